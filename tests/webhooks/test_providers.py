"""Reading events: the order id and event id of each provider's body, and malformed bodies."""

from __future__ import annotations

import json

import pytest

from offramp.orders.contract import schemas
from offramp.orders.models import workflow_id_for
from offramp.orders.names import POLL_NOW_SIGNAL
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
