"""The simulator over real HTTP: documented wrapper, admin overrides, faults, hostile bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from offramp.providers.kado.client import KadoClient
from offramp.providers.kado.errors import (
    KadoMalformedResponse,
    KadoOrderNotFound,
    KadoRateLimited,
    KadoServerError,
    KadoTransportError,
)
from offramp.providers.kado.models import OrderType, TransferStatus, loads_exact
from offramp.simulator.admin import SimulatorAdmin, SimulatorAdminError
from offramp.simulator.faults import FaultConfig, MalformedKind
from tests.conftest import KadoSimulator


@pytest.fixture
async def kado(kado_simulator: KadoSimulator) -> AsyncIterator[KadoClient]:
    async with KadoClient(kado_simulator.base_url, timeout_seconds=2) as client:
        yield client


async def test_wrapper_and_exact_number_text(kado_simulator: KadoSimulator) -> None:
    async with SimulatorAdmin(kado_simulator.base_url) as admin:
        created = await admin.create_order(amount=Decimal("123456789.123456"))
    async with httpx.AsyncClient(base_url=kado_simulator.base_url) as http:
        response = await http.get(f"/v2/public/orders/{created.order_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert '"amount":123456789.123456' in response.text  # a JSON number, digits intact
    payload = loads_exact(response.content)
    assert payload["success"] is True and payload["message"] == "Order found"
    assert payload["data"]["payAmount"]["amount"] == Decimal("123456789.123456")


async def test_unknown_order_is_404_with_the_wrapper(
    kado_simulator: KadoSimulator, kado: KadoClient
) -> None:
    async with httpx.AsyncClient(base_url=kado_simulator.base_url) as http:
        response = await http.get("/v2/public/orders/000000000000000000000000")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "Order not found", "data": None}
    with pytest.raises(KadoOrderNotFound):
        await kado.get_order("000000000000000000000000")


async def test_overrides_serve_any_field(sim_admin: SimulatorAdmin, kado: KadoClient) -> None:
    created = await sim_admin.create_order(
        order_type="buy",
        blockchain="Polygon",
        overrides={"transferStatus": "refunded", "cryptoCurrency": {"decimals": 18}},
    )
    order = await kado.get_order(created.order_id)
    assert order.order_type is OrderType.BUY
    assert order.blockchain == "polygon"
    assert order.transfer_status is TransferStatus.UNKNOWN
    assert order.unrecognised == {"transferStatus": "refunded"}
    assert order.crypto_currency is not None and order.crypto_currency.decimals == 18
    # Nested overrides merge: the token address is still the configured one.
    assert order.crypto_currency.address == created.data["cryptoCurrency"]["address"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"payAmount": {"amount": "100"}}, "payAmount.amount"),
        ({"payAmount": {"amount": -1}}, "payAmount.amount"),
        ({"payAmount": {"amount": 0}}, "payAmount.amount"),
        ({"payAmount": {"amount": Decimal("1E+30")}}, "payAmount.amount"),
        ({"depositAddress": "not-an-address"}, "depositAddress"),
        ({"id": None}, "id"),
    ],
)
async def test_hostile_overrides_become_typed_errors(
    sim_admin: SimulatorAdmin, kado: KadoClient, overrides: dict[str, object], field: str
) -> None:
    created = await sim_admin.create_order(overrides=overrides)
    with pytest.raises(KadoMalformedResponse) as info:
        await kado.get_order(created.order_id)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("raw_body", "expected"),
    [
        ('{"success": false, "message": "Order not found", "data": null}', KadoOrderNotFound),
        ("<html><body>maintenance</body></html>", KadoMalformedResponse),
        (
            '{"success": true, "message": "ok", "data": {"id": "x", "payAmount": {"amount": NaN}}}',
            KadoMalformedResponse,
        ),
    ],
)
async def test_raw_bodies(
    sim_admin: SimulatorAdmin, kado: KadoClient, raw_body: str, expected: type[Exception]
) -> None:
    created = await sim_admin.create_order(raw_body=raw_body)
    with pytest.raises(expected):
        await kado.get_order(created.order_id)


async def test_amount_missing_until_patched(sim_admin: SimulatorAdmin, kado: KadoClient) -> None:
    created = await sim_admin.create_order(amount=None)
    order = await kado.get_order(created.order_id)
    assert order.amount is None and not order.is_ready_for_deposit
    await sim_admin.patch_order(created.order_id, amount="2.5")
    assert (await kado.get_order(created.order_id)).amount == Decimal("2.5")


async def test_per_order_faults_sequence(sim_admin: SimulatorAdmin, kado: KadoClient) -> None:
    faults = FaultConfig(rate_limit_burst=2, rate_limit_every=1, retry_after_seconds=3)
    created = await sim_admin.create_order(faults=faults)
    for _ in range(2):
        with pytest.raises(KadoRateLimited) as info:
            await kado.get_order(created.order_id)
        assert info.value.retry_after == 3
    assert (await kado.get_order(created.order_id)).id == created.order_id

    await sim_admin.set_order_faults(created.order_id, FaultConfig(error_rate=1.0))
    with pytest.raises(KadoServerError):
        await kado.get_order(created.order_id)
    await sim_admin.set_order_faults(created.order_id, None)
    assert (await kado.get_order(created.order_id)).id == created.order_id


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (MalformedKind.HTML, "body"),
        (MalformedKind.TRUNCATED, "body"),
        (MalformedKind.NOT_OBJECT, "body"),
        (MalformedKind.BAD_AMOUNT, "payAmount.amount"),
    ],
)
async def test_malformed_fault_kinds(
    sim_admin: SimulatorAdmin, kado: KadoClient, kind: MalformedKind, field: str
) -> None:
    created = await sim_admin.create_order(
        faults=FaultConfig(malformed_rate=1.0, malformed_kind=kind)
    )
    with pytest.raises(KadoMalformedResponse) as info:
        await kado.get_order(created.order_id)
    assert info.value.field == field


async def test_latency_beyond_the_client_timeout_is_a_transport_error(
    sim_admin: SimulatorAdmin, kado_simulator: KadoSimulator
) -> None:
    created = await sim_admin.create_order(faults=FaultConfig(latency_seconds=3))
    async with KadoClient(kado_simulator.base_url, timeout_seconds=0.5) as impatient:
        with pytest.raises(KadoTransportError) as info:
            await impatient.get_order(created.order_id)
    assert info.value.retryable


async def test_global_faults_apply_to_orders_without_their_own(
    sim_admin: SimulatorAdmin, kado: KadoClient
) -> None:
    plain = await sim_admin.create_order()
    shielded = await sim_admin.create_order(faults=FaultConfig())  # explicit: no faults
    await sim_admin.set_global_faults(FaultConfig(error_rate=1.0, error_status=502))
    try:
        with pytest.raises(KadoServerError) as info:
            await kado.get_order(plain.order_id)
        assert info.value.status_code == 502
        assert (await kado.get_order(shielded.order_id)).id == shielded.order_id
    finally:
        await sim_admin.set_global_faults(None)
    assert (await kado.get_order(plain.order_id)).id == plain.order_id


async def test_admin_rejects_bad_requests(sim_admin: SimulatorAdmin) -> None:
    with pytest.raises(SimulatorAdminError) as info:
        await sim_admin.create_order(scenario="explode")
    assert info.value.status == 422 and "scenario" in info.value.body
    with pytest.raises(SimulatorAdminError) as info:
        await sim_admin.create_order(asset="DAI")  # no token address for it
    assert info.value.status == 400
    created = await sim_admin.create_order()
    with pytest.raises(SimulatorAdminError) as info:
        await sim_admin.create_order(order_id=created.order_id)
    assert info.value.status == 409
    with pytest.raises(SimulatorAdminError) as info:
        await sim_admin.order("nope")
    assert info.value.status == 404


async def test_health_reports_the_chain(sim_admin: SimulatorAdmin) -> None:
    health = await sim_admin.health()
    assert health["ok"] is True and health["chain_id"] == 31337
