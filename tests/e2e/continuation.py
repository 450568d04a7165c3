"""Helpers for orders that continue as new: their runs, wake storms, wakes after a change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from offramp.orders.models import SellOrderState


async def current_run(handle: WorkflowHandle[Any, Any]) -> str:
    return (await handle.describe()).run_id or ""


async def run_chain(client: Client, workflow_id: str, first_run_id: str) -> list[WorkflowHistory]:
    """Every run of the order, following each continue-as-new to the next run."""
    histories, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else ""
        )
    return histories


async def storm_until_continued(handle: WorkflowHandle[Any, Any]) -> None:
    """poll_now in bursts (as a webhook storm would) until the order is in a new run."""
    before = await current_run(handle)
    async with asyncio.timeout(120):
        while await current_run(handle) == before:
            await asyncio.gather(*(handle.signal("poll_now") for _ in range(10)))
            await asyncio.sleep(0.5)


async def wake_until(
    handle: WorkflowHandle[Any, Any], done: Callable[[SellOrderState], bool]
) -> None:
    """The provider changed: a webhook says so (polls are an hour apart)."""
    async with asyncio.timeout(120):
        while not done(await handle.query("state", result_type=SellOrderState)):
            await handle.signal("poll_now")
            await asyncio.sleep(2.5)  # past the 2 s poll_now gap
