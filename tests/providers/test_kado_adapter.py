"""The Kado adapter: its pure mapping to the normalised snapshot, its names and error types, and
the payload shapes committed histories hold (unchanged for Kado)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from offramp.chain.models import PaymentOutcome, PaymentStatus
from offramp.converter import DATA_CONVERTER
from offramp.orders.models import CheckSellOrderInput, SellOrderInput, order_payment_id
from offramp.providers import ADAPTERS, ErrorKind, Phase, UnknownProvider, adapter
from offramp.providers.kado.errors import ALL_ERROR_TYPES, NOT_CHANGED_ERROR_TYPE
from offramp.providers.kado.models import KadoOrder, TransferStatus, order_from_data
from offramp.rejections import RejectReason

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DEPOSIT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
KADO = adapter("kado")


def order(**overrides: Any) -> KadoOrder:
    data: dict[str, Any] = {
        "id": "o-1",
        "orderType": "sell",
        "blockchain": "Anvil",
        "asset": "USDC",
        "userRef": "user-42",
        "depositAddress": DEPOSIT,
        "manualDepositMemo": "memo-7",
        "payAmount": {"amount": Decimal("100.25"), "unit": "USDC"},
        "cryptoCurrency": {
            "symbol": "USDC",
            "address": TOKEN,
            "isNative": False,
            "decimals": 6,
            "officialChainId": 31337,
        },
        "transferStatus": "uninitiated",
        "providerDisbursementStatus": "pending",
        "machineStatusField": "PENDING_PAYMENT",
        "humanStatusField": "Waiting for your deposit",
        "expiresAt": "2026-12-01T15:00:00Z",
    }
    data.update(overrides)
    return order_from_data(data)


def test_a_ready_order_maps_to_its_payment_instruction() -> None:
    view = KADO.snapshot(order())
    assert view.phase is Phase.AWAITING_DEPOSIT and view.ready
    assert view.identity.order_id == "o-1" and view.identity.user_ref == "user-42"
    pay = view.instruction
    assert (pay.chain, pay.chain_id, pay.asset, pay.token_address, pay.decimals) == (
        "anvil",
        31337,
        "USDC",
        TOKEN,
        6,
    )
    assert pay.amount == Decimal("100.25") and pay.amount_unit == "USDC"
    assert (pay.deposit_address, pay.memo, pay.deadline) == (
        DEPOSIT,
        "memo-7",
        "2026-12-01T15:00:00Z",
    )
    assert pay.asset_names == {"asset": "USDC", "cryptoCurrency.symbol": "USDC"}
    assert (view.status, view.status_code, view.status_text) == (
        "uninitiated",
        "PENDING_PAYMENT",
        "Waiting for your deposit",
    )
    assert view.funded_evidence is None and view.missing_for_deposit == []


@pytest.mark.parametrize(
    ("overrides", "phase"),
    [
        ({"depositAddress": None}, Phase.NOT_READY),
        ({"transferStatus": "pending"}, Phase.PROCESSING),
        ({"providerDisbursementStatus": "completed"}, Phase.PROCESSING),
        ({"transferStatus": "settled"}, Phase.SETTLED),
        ({"transferStatus": "failed"}, Phase.FAILED),
        # Kado's expiry: failed with ORDER_EXPIRED, or the disbursement expired.
        ({"transferStatus": "failed", "machineStatusField": "ORDER_EXPIRED"}, Phase.EXPIRED),
        ({"providerDisbursementStatus": "expired"}, Phase.EXPIRED),
        ({"transferStatus": "unknown"}, Phase.NEEDS_PERSON),
        ({"transferStatus": "refunded"}, Phase.NEEDS_PERSON),  # unrecognised: unknown
    ],
)
def test_phase_of_each_provider_status(overrides: dict[str, Any], phase: Phase) -> None:
    assert KADO.snapshot(order(**overrides)).phase is phase


def test_the_snapshot_of_an_order_equals_that_of_its_serialised_form() -> None:
    raw = order(transferStatus="pending")
    assert KADO.snapshot(raw.model_dump(mode="json", by_alias=True)) == KADO.snapshot(raw)


def test_names_and_error_types_are_the_ones_histories_hold() -> None:
    assert ADAPTERS == {"kado": KADO}
    assert KADO.activities.fetch_order == "kado_fetch_order"
    assert KADO.activities.wait_for_order_change == "kado_wait_for_order_change"
    assert KADO.error_types[ErrorKind.NOT_FOUND] == "KadoOrderNotFound"
    assert KADO.error_types[ErrorKind.MALFORMED] == "KadoMalformedResponse"
    assert KADO.error_types[ErrorKind.REQUEST_REJECTED] == "KadoRequestRejected"
    assert KADO.error_types[ErrorKind.NOT_CHANGED] == NOT_CHANGED_ERROR_TYPE
    assert {cls.kind for cls in ALL_ERROR_TYPES} | {ErrorKind.NOT_CHANGED} == set(ErrorKind)
    with pytest.raises(UnknownProvider, match="baanx"):
        adapter("baanx")


def test_wait_input_round_trips_the_status() -> None:
    wait = KADO.wait_input(
        order_id="o-1",
        await_ready=True,
        last_status="pending",
        retry_malformed=False,
        initial_interval_seconds=5.0,
        max_interval_seconds=60.0,
    )
    assert wait.model_dump()["last_transfer_status"] is TransferStatus.PENDING


def _json(value: Any) -> bytes:
    return DATA_CONVERTER.payload_converter.to_payloads([value])[0].data


def test_kado_payloads_carry_no_provider_field() -> None:
    """Old workers (and committed histories) know no `provider`: Kado's payloads omit it."""
    request = SellOrderInput(order_id="o-1", user_ref="u", max_amount=Decimal("5"))
    assert b'"provider":' not in _json(request)
    assert b'"provider":' not in _json(CheckSellOrderInput(order=order(), request=request))
    assert request.workflow_id == "kado-sell-o-1" and request.payment_id == "kado-o-1"
    assert order_payment_id("kado", "o-1") == request.payment_id


def test_the_former_payment_codes_decode_into_the_one_vocabulary() -> None:
    outcome = PaymentOutcome.model_validate(
        {
            "payment_id": "p",
            "status": PaymentStatus.REJECTED,
            "rejection_code": "would_revert",
            "chain": "anvil",
            "asset": "USDC",
            "recipient": DEPOSIT,
            "amount": "1",
        }
    )
    assert outcome.rejection_code is RejectReason.TRANSFER_WOULD_FAIL
    assert RejectReason("invalid_recipient") is RejectReason.DEPOSIT_ADDRESS_INVALID
    assert RejectReason("daily_cap") is RejectReason.DAILY_CAP
    with pytest.raises(ValueError):
        RejectReason("no_such_reason")
