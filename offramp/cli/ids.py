"""One way every command reads the order or workflow it is given: `<order id>` and the order's
workflow id `kado-sell-<order id>` name the same order (the Web UI shows the one, backends and
the provider the other)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import typer

from offramp.chain.models import PAYMENT_WORKFLOW_ID_PREFIX
from offramp.orders.models import ORDER_ID_PATTERN, WORKFLOW_ID_PREFIX, workflow_id_for

_ORDER_ID = re.compile(ORDER_ID_PATTERN)
# The engine's other workflows (payment children, hot-wallet entities and their nonce fills):
# `replay --workflow-id` takes them as they are.
_OTHER_WORKFLOW_PREFIXES = (PAYMENT_WORKFLOW_ID_PREFIX, "hot-wallet-")


@dataclass(frozen=True)
class OrderRef:
    order_id: str
    workflow_id: str


def order_ref(text: str) -> OrderRef:
    """An order id or its workflow id; a usage error (exit 2) when it can be neither."""
    given = text.strip()
    order_id = given.removeprefix(WORKFLOW_ID_PREFIX)
    if not _ORDER_ID.fullmatch(order_id):
        raise typer.BadParameter(
            f"{text!r} is not an order id or a {WORKFLOW_ID_PREFIX}<order id> workflow id "
            "(1-128 letters, digits or _ . : -, starting with a letter or digit)",
            param_hint="order_id",
        )
    return OrderRef(order_id=order_id, workflow_id=workflow_id_for(order_id))


def workflow_id_of(text: str) -> str:
    """Any engine workflow id as it is; an order id as its order's workflow id."""
    given = text.strip()
    if given.startswith(_OTHER_WORKFLOW_PREFIXES):
        return given
    return order_ref(given).workflow_id
