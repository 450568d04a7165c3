"""Reading events: the order id and event id of each provider's body, and malformed bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from offramp.orders.contract import schemas
from offramp.orders.models import workflow_id_for
from offramp.orders.names import POLL_NOW_SIGNAL
from offramp.simulator.jsonx import dumps_exact
from offramp.simulator.orders import Phase as SimPhase
from offramp.simulator.orders import SimOrder
from offramp.webhooks.providers import KADO, KIDAPAY, MalformedEvent, parse_kado, parse_kidapay


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_the_wake_signal_is_the_contracts_poll_now() -> None:
    assert POLL_NOW_SIGNAL in schemas()["contract.json"]["signals"]


def test_kado_event() -> None:
    event = parse_kado(
        body({"id": "evt-1", "resource": "order", "type": "order.updated", "data": {"id": "o1"}}),
        "sig",
    )
    assert (event.event_id, event.order_id, event.event_type) == ("evt-1", "o1", "order.updated")
    assert KADO.workflow_id("o1") == workflow_id_for("o1")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (body({"id": "e", "data": "o1"}), "data: not an object"),
        (body({"id": "e", "data": {}}), "data.id: not an order id"),
        (body({"id": "e", "data": {"id": "../../etc"}}), "data.id: not an order id"),
        (body({"id": "e", "data": {"id": "x" * 129}}), "data.id: not an order id"),
        (body({"data": {"id": "o1"}}), "id: not an event id"),
        (body({"id": 7, "data": {"id": "o1"}}), "id: not an event id"),
        (body({"id": "e" * 201, "data": {"id": "o1"}}), "id: not an event id"),
    ],
)
def test_kado_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        parse_kado(raw, "sig")


def test_kidapay_event_shapes() -> None:
    order_id = "8cbe9c00-7b0d-4b03-816f-e88a3c6bfa5c"
    nested = parse_kidapay(body({"order": {"order_id": order_id, "status": "PAID"}}), "abc")
    assert nested.order_id == order_id and nested.event_id == "sig:abc"
    flat = parse_kidapay(body({"order_id": order_id, "event_id": "ev-9", "type": "paid"}), "abc")
    assert (flat.order_id, flat.event_id, flat.event_type) == (order_id, "ev-9", "paid")
    assert KIDAPAY.workflow_id(order_id).endswith(order_id)
    with pytest.raises(MalformedEvent, match="order_id"):
        parse_kidapay(body({"invoice": {}}), "abc")


NOW = datetime(2026, 12, 1, tzinfo=UTC)


def served(phase: SimPhase, *, ready: bool = True) -> Any:
    """The order as the Kado simulator serves (and webhooks) it in `phase`."""
    order = SimOrder(
        id="o1",
        blockchain="ethereum",
        asset="USDC",
        amount=Decimal("12.5"),
        decimals=6,
        token_address="0x" + "11" * 20,
        deposit_address="0x" + "22" * 20,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        ready_at=NOW if ready else NOW + timedelta(minutes=5),
        phase=phase,
    )
    return order.served_data(NOW)


@pytest.mark.parametrize(
    ("phase", "ready", "wake"),
    [
        (SimPhase.AWAITING_DEPOSIT, False, False),  # no deposit address yet: nothing to do
        (SimPhase.AWAITING_DEPOSIT, True, True),  # ready for our deposit
        (SimPhase.DEPOSIT_SEEN, True, False),  # our deposit confirming: waited through
        (SimPhase.SETTLING, True, False),
        (SimPhase.SETTLED, True, True),
        (SimPhase.FAILED, True, True),
        (SimPhase.EXPIRED, True, True),
        (SimPhase.STUCK_UNKNOWN, True, True),  # a person must look
    ],
)
def test_a_kado_event_wakes_only_for_what_the_order_acts_on(
    phase: SimPhase, ready: bool, wake: bool
) -> None:
    data = served(phase, ready=ready)
    # The body as the simulator sends it: amounts as exact JSON numbers.
    raw = dumps_exact({"id": "e", "type": "order.updated", "data": data}).encode()
    event = parse_kado(raw, "sig")
    assert (event.order_id, event.wake) == ("o1", wake)


def test_a_kado_order_created_event_wakes_nothing() -> None:
    # The order's workflow starts after the order exists: nobody to wake, or it is fetching.
    raw = dumps_exact(
        {"id": "e", "type": "order.created", "data": served(SimPhase.AWAITING_DEPOSIT)}
    )
    assert not parse_kado(raw.encode(), "sig").wake


@pytest.mark.parametrize(
    "data",
    [
        {"id": "o1"},  # says nothing of its status
        {"id": "o1", "transferStatus": "pending", "payAmount": "not an object"},  # unreadable
    ],
)
def test_a_kado_event_that_does_not_say_wakes(data: dict[str, object]) -> None:
    assert parse_kado(body({"id": "e", "data": data}), "sig").wake
