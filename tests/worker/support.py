"""In-process workers built exactly as `python -m worker` builds them (roles, queues,
build), and what a history says about who ran each task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from offramp.config import EngineSettings
from worker.main import build_workers, create_resources


@asynccontextmanager
async def worker_process(client: Client, settings: EngineSettings) -> AsyncIterator[None]:
    """What one worker process of `settings` (role, build) runs, until the block ends."""
    resources = await create_resources(settings)
    try:
        async with AsyncExitStack() as running:
            for worker in build_workers(client, settings, resources):
                await running.enter_async_context(worker)
            yield
    finally:
        await resources.aclose()


async def history_events(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


def workflow_task_builds(events: list[HistoryEvent]) -> list[str]:
    """The build id of the worker that completed each workflow task."""
    return [
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in events
        if e.HasField("workflow_task_completed_event_attributes")
    ]


def activity_workers(events: list[HistoryEvent]) -> list[tuple[str, str]]:
    """(activity type, identity of the worker that ran its last attempt) per activity."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    return [
        (
            scheduled[e.activity_task_started_event_attributes.scheduled_event_id],
            e.activity_task_started_event_attributes.identity,
        )
        for e in events
        if e.HasField("activity_task_started_event_attributes")
    ]


def child_ids(events: list[HistoryEvent]) -> list[str]:
    """The workflow ids of the children a history started (an order's payment)."""
    return [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
