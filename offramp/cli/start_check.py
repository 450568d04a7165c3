"""A second `offramp start` for an order already started: the same input is the same order (the
existing run is shown); a different one is an operator's mistake to report, not to hide."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from offramp.orders.models import SellOrderInput

# The fields `offramp start` sets; the rest (timeouts, poll intervals) a backend may have chosen
# and the CLI does not offer, so they are not compared.
COMPARED_FIELDS = ("order_id", "user_ref", "wallet_address", "max_amount")


async def started_input(client: Client, handle: WorkflowHandle[Any, Any]) -> SellOrderInput | None:
    """The input recorded in the run's WorkflowExecutionStarted event (None if it does not
    decode as a sell order's input: it then failed at once, and `status` says why)."""
    async for event in handle.fetch_history_events(page_size=1):
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            break
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        values = await client.data_converter.decode(list(payloads))
        try:
            return SellOrderInput.model_validate(values[0]) if values else None
        except ValueError:
            return None
    return None


def differing_fields(existing: SellOrderInput | None, request: SellOrderInput) -> list[str]:
    """The compared fields that differ; every one when the recorded input is not a valid one."""
    if existing is None:
        return ["input (the recorded one is not a valid sell order input)"]
    return [
        name
        for name in COMPARED_FIELDS
        if _comparable(getattr(existing, name)) != _comparable(getattr(request, name))
    ]


def _comparable(value: object) -> object:
    # Addresses are the same whatever their checksum casing.
    return value.lower() if isinstance(value, str) and value.startswith("0x") else value
