"""Following many workflows without one long poll each: count and list them in visibility.

A scenario's workflows are those of one type started at or after the scenario's start (scenarios
run one after another). Every call is retried while the server is unreachable (it may be killed on
purpose), and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

T = TypeVar("T")
POLL_SECONDS = 1.0


def scenario_query(workflow_type: str, started_from: datetime) -> str:
    since = started_from.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"WorkflowType = '{workflow_type}' AND StartTime >= '{since}'"


async def retrying(call: Callable[[], Awaitable[T]], limit_seconds: float = 180.0) -> T:
    """`call()` again while Temporal is unreachable (RPCError), for at most `limit_seconds`."""
    deadline = time.monotonic() + limit_seconds
    while True:
        try:
            return await call()
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Closed:
    workflow_id: str
    status: WorkflowExecutionStatus
    start: datetime
    close: datetime

    @property
    def seconds(self) -> float:
        return (self.close - self.start).total_seconds()


async def count(client: Client, query: str) -> int:
    result = await retrying(lambda: client.count_workflows(query))
    return result.count


async def wait_all_closed(
    client: Client,
    query: str,
    expected: int,
    limit_seconds: float,
    tick: Callable[[int], None] = lambda _: None,
) -> int:
    """Poll until `expected` workflows matching `query` are closed or `limit_seconds` passed; each
    poll calls `tick(closed)` (progress; may raise to stop). Returns how many closed."""
    closed_query = f"{query} AND ExecutionStatus != 'Running'"
    deadline = time.monotonic() + limit_seconds
    closed = 0
    while time.monotonic() < deadline:
        closed = await count(client, closed_query)
        tick(closed)
        if closed >= expected:
            break
        await asyncio.sleep(POLL_SECONDS)
    return closed


async def list_closed(client: Client, query: str) -> list[Closed]:
    async def collect() -> list[Closed]:
        found = []
        async for wf in client.list_workflows(
            f"{query} AND ExecutionStatus != 'Running'", page_size=1000
        ):
            if wf.status is not None and wf.close_time is not None:
                found.append(Closed(wf.id, wf.status, wf.start_time, wf.close_time))
        return found

    return await retrying(collect)


async def list_open(client: Client, query: str) -> list[str]:
    async def collect() -> list[str]:
        return [
            wf.id
            async for wf in client.list_workflows(
                f"{query} AND ExecutionStatus = 'Running'", page_size=1000
            )
        ]

    return await retrying(collect)
