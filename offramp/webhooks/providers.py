"""One route per provider that publishes webhooks: how it signs, how its event names the order,
and which workflow follows that order.

An event only says "this order changed, look now": nothing in it is trusted beyond the order id
(the workflow re-fetches the order from the provider's status route).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pydantic import SecretStr

from offramp.orders.models import ORDER_ID_PATTERN, workflow_id_for
from offramp.providers.kado.adapter import snapshot as kado_snapshot
from offramp.providers.kado.models import OrderParseError, loads_exact, order_from_data
from offramp.providers.snapshot import Phase
from offramp.webhooks.signatures import SchemeHeaders, verify_kado, verify_kidapay

_ORDER_ID_RE: Final = re.compile(ORDER_ID_PATTERN)
MAX_EVENT_ID_CHARS: Final = 200
KADO_CREATED_EVENT: Final = "order.created"
# Phases the order workflow has nothing to do in (it waits for the next one): no wake for them.
_WAITED_THROUGH: Final = frozenset({Phase.NOT_READY, Phase.PROCESSING})
# [ours] KidaPay's adapter has not landed: its workflows will be named by it. Until then the route
# verifies and deduplicates, and wakes the workflow this names (none exists yet: logged, ignored).
KIDAPAY_WORKFLOW_ID_PREFIX: Final = "kidapay-sell-"


class MalformedEvent(Exception):
    """The body is signed but not an event we can read. `reason` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str  # the provider's id of this event (what dedup keys on)
    order_id: str
    event_type: str | None = None
    # False when the event itself shows the order in a state the engine only waits through (a
    # deposit on its way, not yet ready): no wake, so no billed signal and poll for it. An event
    # that does not say (or cannot be read that far) wakes: it is only a hint either way.
    wake: bool = True


class Verifier(Protocol):
    def __call__(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: SecretStr,
        *,
        now: float,
        tolerance: float,
        names: SchemeHeaders,
    ) -> str: ...


@dataclass(frozen=True)
class ProviderRoute:
    name: str  # the route is POST /webhooks/<name>
    verify: Verifier
    # (body, verified signature) -> event; raises MalformedEvent.
    parse: Callable[[bytes, str], WebhookEvent]
    workflow_id: Callable[[str], str]


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = loads_exact(body)  # amounts as Decimal, never float
    except (ValueError, RecursionError):  # also UnicodeDecodeError
        raise MalformedEvent("body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("body is not a JSON object")
    return payload


def _order_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _ORDER_ID_RE.fullmatch(value):
        raise MalformedEvent(f"{field}: not an order id")
    return value


def _event_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_EVENT_ID_CHARS:
        raise MalformedEvent(f"{field}: not an event id (1-{MAX_EVENT_ID_CHARS} characters)")
    return value


def parse_kado(body: bytes, signature: str) -> WebhookEvent:
    """`{id, resource, type, data}` where `data` is the order as the status route serves it."""
    payload = _object(body)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("data: not an object")
    event_type = payload.get("type")
    return WebhookEvent(
        event_id=_event_id(payload.get("id"), "id"),
        order_id=_order_id(data.get("id"), "data.id"),
        event_type=event_type if isinstance(event_type, str) else None,
        # A workflow for an order is started after the order exists: at its creation there is
        # none to wake, or one that is fetching it already.
        wake=event_type != KADO_CREATED_EVENT and _kado_worth_waking(data),
    )


def _kado_worth_waking(data: dict[str, Any]) -> bool:
    """Wake for what the order workflow acts on: ready for our deposit, or an ending (settled,
    failed, expired, unknown). A stated status that is neither (e.g. `pending` while our deposit
    confirms) is what the workflow waits through; its safety poll still runs."""
    try:
        view = kado_snapshot(order_from_data(data))
    except OrderParseError:
        return True
    if view.status is None:
        return True
    return view.phase not in _WAITED_THROUGH


def parse_kidapay(body: bytes, signature: str) -> WebhookEvent:
    """[ours] KidaPay's webhook body is not published: the order as its GET route serves it
    (`{"order": {"order_id", "status", ...}, "invoice": {...}}`) or a flat `order_id`. Without an
    `event_id`/`id` the (timestamped) signature is the delivery's id."""
    payload = _object(body)
    order = payload.get("order")
    if isinstance(order, dict):
        order_id = _order_id(order.get("order_id"), "order.order_id")
    else:
        order_id = _order_id(payload.get("order_id"), "order_id")
    raw_id = payload.get("event_id", payload.get("id"))
    event_id = _event_id(raw_id, "event_id") if raw_id is not None else f"sig:{signature}"
    event_type = payload.get("type", payload.get("event"))
    return WebhookEvent(
        event_id=event_id,
        order_id=order_id,
        event_type=event_type if isinstance(event_type, str) else None,
    )


def kidapay_workflow_id(order_id: str) -> str:
    return f"{KIDAPAY_WORKFLOW_ID_PREFIX}{order_id}"


KADO: Final = ProviderRoute("kado", verify_kado, parse_kado, workflow_id_for)
KIDAPAY: Final = ProviderRoute("kidapay", verify_kidapay, parse_kidapay, kidapay_workflow_id)
PROVIDERS: Final = {route.name: route for route in (KADO, KIDAPAY)}
