"""Simulator orders move because of real deposits on the local chain (the session's anvil)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from offramp.providers.kado.client import KadoClient
from offramp.providers.kado.models import DisbursementStatus, TransferStatus
from offramp.simulator.admin import SimulatorAdmin
from tests.conftest import KadoSimulator
from tests.simulator.conftest import Depositor


@pytest.fixture
async def kado(kado_simulator: KadoSimulator) -> AsyncIterator[KadoClient]:
    async with KadoClient(kado_simulator.base_url, timeout_seconds=5) as client:
        yield client


async def test_exact_deposit_settles(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="12.345678", user_ref="user-42")
    assert created.expected_base_units == 12_345_678

    order = await kado.get_order(created.order_id)
    assert order.is_ready_for_deposit, order.missing_for_deposit
    assert order.amount == Decimal("12.345678")
    assert order.deposit_address == created.deposit_address
    assert order.blockchain == "anvil"
    assert order.crypto_currency is not None
    assert order.crypto_currency.address == depositor.token
    assert order.crypto_currency.decimals == 6
    assert order.user_ref == "user-42"

    receipt = depositor.send_token(created.deposit_address, 12_345_678)
    await sim_admin.wait_for_phase(created.order_id, "settled")

    order = await kado.get_order(created.order_id)
    assert order.transfer_status is TransferStatus.SETTLED
    assert order.provider_disbursement_status is DisbursementStatus.COMPLETED
    assert order.machine_status == "SETTLED"
    assert order.tx_hash == receipt["transactionHash"].to_0x_hex()
    assert order.is_terminal and not order.is_failed


async def test_deposit_passes_through_pending(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    # A long settlement delay holds the order in "pending" after the deposit is confirmed.
    created = await sim_admin.create_order(amount="1", settlement_delay_seconds=3600)
    depositor.send_token(created.deposit_address, 1_000_000)
    await sim_admin.wait_for_phase(created.order_id, "settling")
    order = await kado.get_order(created.order_id)
    assert order.transfer_status is TransferStatus.PENDING
    assert not order.is_ready_for_deposit


async def test_one_base_unit_short_fails(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="5")
    depositor.send_token(created.deposit_address, 5_000_000 - 1)
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.state["failure"] == "WRONG_AMOUNT"
    order = await kado.get_order(created.order_id)
    assert order.is_failed and not order.is_expired
    assert order.machine_status == "WRONG_AMOUNT"


async def test_one_base_unit_over_fails(sim_admin: SimulatorAdmin, depositor: Depositor) -> None:
    created = await sim_admin.create_order(amount="5")
    depositor.send_token(created.deposit_address, 5_000_000 + 1)
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.state["failure"] == "WRONG_AMOUNT"


async def test_no_deposit_expires(sim_admin: SimulatorAdmin, kado: KadoClient) -> None:
    created = await sim_admin.create_order(amount="5", expires_in_seconds=1)
    assert (await kado.get_order(created.order_id)).is_ready_for_deposit
    await sim_admin.wait_for_phase(created.order_id, ["expired", "failed"], timeout_seconds=15)
    order = await kado.get_order(created.order_id)
    assert order.is_expired
    assert order.transfer_status is TransferStatus.FAILED
    assert order.provider_disbursement_status is DisbursementStatus.EXPIRED
    assert not order.is_ready_for_deposit


async def test_deposit_after_expiry_fails(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="2", expires_in_seconds=1)
    await sim_admin.wait_for_phase(created.order_id, "expired", timeout_seconds=15)
    depositor.send_token(created.deposit_address, 2_000_000)
    view = await sim_admin.wait_for_phase(created.order_id, "failed")
    assert view.state["failure"] == "DEPOSIT_AFTER_EXPIRY"
    assert (await kado.get_order(created.order_id)).machine_status == "DEPOSIT_AFTER_EXPIRY"


async def test_native_coin_to_a_token_order_is_the_wrong_token(
    sim_admin: SimulatorAdmin, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="3")
    depositor.send_native(created.deposit_address, 3_000_000)
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.state["failure"] == "WRONG_TOKEN"


async def test_another_erc20_is_the_wrong_token(
    sim_admin: SimulatorAdmin, depositor: Depositor
) -> None:
    other = depositor.deploy_other_token()
    created = await sim_admin.create_order(amount="3")
    depositor.send_token(created.deposit_address, 3_000_000, token=other)
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.state["failure"] == "WRONG_TOKEN"


async def test_native_order_settles_on_exact_wei(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(asset="ETH", amount="0.000000000000000123")
    assert created.expected_base_units == 123
    order = await kado.get_order(created.order_id)
    assert order.crypto_currency is not None and order.crypto_currency.is_native
    assert order.crypto_currency.decimals == 18
    depositor.send_native(created.deposit_address, 123)
    await sim_admin.wait_for_phase(created.order_id, "settled")


async def test_split_deposit_sums_parts_until_confirmed(
    sim_admin: SimulatorAdmin, depositor: Depositor
) -> None:
    # Three confirmations: the sum is judged when the last part has them, so both parts count.
    created = await sim_admin.create_order(amount="4", confirmations=3)
    depositor.send_token(created.deposit_address, 1_000_000)
    depositor.send_token(created.deposit_address, 3_000_000)
    view = await sim_admin.wait_for(created.order_id, lambda v: len(v.state["deposits"]) == 2)
    assert view.phase == "deposit_seen"  # 1 confirmation of 3 for the last part
    for _ in range(2):
        depositor.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.phase == "settled", view.state


async def test_scenario_stuck_unknown(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="1", scenario="stuck_unknown")
    depositor.send_token(created.deposit_address, 1_000_000)
    await sim_admin.wait_for_phase(created.order_id, "stuck_unknown")
    order = await kado.get_order(created.order_id)
    assert order.transfer_status is TransferStatus.UNKNOWN
    assert not order.is_terminal


async def test_scenario_provider_failure(sim_admin: SimulatorAdmin, depositor: Depositor) -> None:
    created = await sim_admin.create_order(amount="1", scenario="provider_failure")
    depositor.send_token(created.deposit_address, 1_000_000)
    view = await sim_admin.wait_for_phase(created.order_id, ["failed", "settled"])
    assert view.state["failure"] == "DISBURSEMENT_FAILED"


async def test_scenario_slow_settlement(
    sim_admin: SimulatorAdmin, kado: KadoClient, depositor: Depositor
) -> None:
    created = await sim_admin.create_order(amount="1", scenario="slow_settlement")
    depositor.send_token(created.deposit_address, 1_000_000)
    await sim_admin.wait_for_phase(created.order_id, "settling")
    order = await kado.get_order(created.order_id)
    assert order.machine_status == "DELAYED_SETTLEMENT"
    assert order.transfer_status is TransferStatus.PENDING
    # Shorten the delay: it settles.
    await sim_admin.patch_order(created.order_id, settlement_delay_seconds=0)
    view = await sim_admin.order(created.order_id)
    assert view.phase == "settling"  # the settle time was fixed when settlement began


async def test_not_ready_until_later(sim_admin: SimulatorAdmin, kado: KadoClient) -> None:
    created = await sim_admin.create_order(amount="7", ready_after_seconds=3600)
    order = await kado.get_order(created.order_id)
    assert order.deposit_address is None
    assert order.amount is None
    assert not order.is_ready_for_deposit
    assert "depositAddress" in order.missing_for_deposit
    await sim_admin.patch_order(created.order_id, ready_after_seconds=0)
    order = await kado.get_order(created.order_id)
    assert order.is_ready_for_deposit
    assert order.amount == Decimal("7")
