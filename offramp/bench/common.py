"""What every scenario shares: the stack, a client, a run tag, bounded concurrency, progress."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from temporalio.client import Client
from temporalio.service import RPCError

from offramp.bench import tracking
from offramp.bench.figures import Row
from offramp.bench.stack import BenchStack
from offramp.bench.stats import latencies, rate

T = TypeVar("T")
# Client calls in flight at once (starts, result fetches): enough to start thousands in seconds,
# few enough that the client and the dev server are not what is measured.
CONCURRENCY = 64
PROGRESS_SECONDS = 10.0


@dataclass
class Bench:
    stack: BenchStack
    client: Client
    # Seconds a scenario's workflows may take to close (then the rest is "stuck"); None: 300 s
    # plus 3 s per workflow: one wallet did 0.2-0.6 orders/s on a loaded 2-core machine.
    timeout: float | None
    log: Callable[[str], None] = print
    tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def limit(self, count: int) -> float:
        return self.timeout if self.timeout is not None else 300.0 + 3.0 * count

    def now(self) -> datetime:
        return datetime.now(UTC)


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = CONCURRENCY) -> list[T]:
    """Run the calls, at most `limit` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def terminate(bench: Bench, workflow_ids: list[str]) -> None:
    def stop(workflow_id: str) -> Callable[[], Awaitable[None]]:
        handle = bench.client.get_workflow_handle(workflow_id)

        async def call() -> None:
            with suppress(RPCError):  # it may have closed meanwhile
                await handle.terminate(reason="benchmark: still open after its time limit")

        return call

    await bounded(stop(w) for w in workflow_ids)


async def wait_and_time(
    bench: Bench, name: str, unit: str, workflow_type: str, since: datetime, count: int
) -> tuple[Row, list[tracking.Closed]]:
    """Wait (bounded) until the scenario's `count` workflows closed; the row with rate, latency
    and the number still open ("stuck"), and every closed workflow."""
    query = tracking.scenario_query(workflow_type, since)
    began = time.monotonic()
    last_report = [began]

    def tick(closed: int) -> None:
        bench.stack.check()
        if time.monotonic() - last_report[0] >= PROGRESS_SECONDS:
            last_report[0] = time.monotonic()
            bench.log(f"  {name}: {closed}/{count} closed after {time.monotonic() - began:.0f} s")

    limit = bench.limit(count)
    await tracking.wait_all_closed(bench.client, query, count, limit, tick)
    seconds = time.monotonic() - began
    closed = await tracking.list_closed(bench.client, query)
    still_open = await tracking.list_open(bench.client, query)
    first_start = min((c.start for c in closed), default=None)
    last_close = max((c.close for c in closed), default=None)
    row = Row(
        scenario=name,
        count=count,
        rate=rate(len(closed), first_start, last_close),
        unit=unit,
        seconds=seconds,
        latency=latencies([c.seconds for c in closed]),
        stuck=len(still_open),
    )
    if still_open:
        await terminate(bench, still_open)
        row.notes.append(
            f"{len(still_open)} still open after {limit:.0f} s (terminated, so they do "
            "not load the next scenarios; a terminated payment may leave a nonce gap), e.g. "
            + ", ".join(still_open[:3])
        )
    return row, closed
