"""Waking workflows off the request path: a bounded set of pending wakes, drained by a few tasks.

The HTTP reply never waits for Temporal: `offer` only records the wake. Wakes for one workflow
coalesce (an order already pending is not queued twice) and are spaced by `order_gap` (a later
event inside the gap is delivered when the gap ends, never dropped), so a storm of webhooks for
one order costs at most one signal per gap per receiver replica. A full set refuses the event
(the route answers 503, the provider redelivers); a wake that fails is only logged: the
workflow's own safety poll still finds the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from offramp.orders.names import POLL_NOW_SIGNAL

log = logging.getLogger(__name__)

# The order workflow's wake-up signal (workflows/order/handlers.py `poll_now`, in the
# contract's `signals`) is sent as a plain signal, never signal-with-start, so an unknown order
# starts nothing.
SIGNAL_TIMEOUT: Final = timedelta(seconds=10)


class WakeResult(StrEnum):
    SENT = "sent"
    UNKNOWN = "unknown"  # no such workflow, or it has closed
    FAILED = "failed"


class Offer(StrEnum):
    QUEUED = "queued"
    COALESCED = "coalesced"  # merged into a wake already pending for the same workflow
    FULL = "full"


Signaller = Callable[[str], Awaitable[WakeResult]]


def temporal_signaller(client: Client) -> Signaller:
    async def signal(workflow_id: str) -> WakeResult:
        handle = client.get_workflow_handle(workflow_id)
        try:
            await handle.signal(POLL_NOW_SIGNAL, rpc_timeout=SIGNAL_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return WakeResult.UNKNOWN
            log.warning("poll_now to %s failed: %s %s", workflow_id, exc.status.name, exc.message)
            return WakeResult.FAILED
        return WakeResult.SENT

    return signal


@dataclass
class WakeCounts:
    queued: int = 0
    coalesced: int = 0
    full: int = 0
    sent: int = 0
    unknown: int = 0
    failed: int = 0


class Waker:
    def __init__(
        self,
        signaller: Signaller,
        *,
        max_pending: int = 10_000,
        concurrency: int = 16,
        order_gap_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._signal = signaller
        self.max_pending = max_pending
        self.concurrency = concurrency
        self.order_gap = order_gap_seconds
        self._clock = clock
        self._queue: asyncio.Queue[str] = asyncio.Queue()  # bounded by `_pending`
        self._pending: set[str] = set()  # queued or waiting for its gap
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        # When each workflow was last signalled, oldest first; only entries inside the gap matter.
        self._last_sent: OrderedDict[str, float] = OrderedDict()
        self._in_flight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.counts = WakeCounts()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def idle(self) -> bool:
        return not self._pending and self._in_flight == 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._drain(), name=f"webhook-wake-{i}")
            for i in range(self.concurrency)
        ]

    def offer(self, workflow_id: str) -> Offer:
        """Record a wake for `workflow_id` (synchronous: the caller replies at once)."""
        if workflow_id in self._pending:
            self.counts.coalesced += 1
            return Offer.COALESCED
        if len(self._pending) >= self.max_pending:
            self.counts.full += 1
            return Offer.FULL
        self._pending.add(workflow_id)
        self.counts.queued += 1
        wait = self._gap_left(workflow_id)
        if wait > 0:
            loop = asyncio.get_running_loop()
            self._delayed[workflow_id] = loop.call_later(wait, self._release, workflow_id)
        else:
            self._queue.put_nowait(workflow_id)
        return Offer.QUEUED

    def _gap_left(self, workflow_id: str) -> float:
        now = self._clock()
        while self._last_sent:  # forget signals older than the gap (bounds the map)
            oldest, at = next(iter(self._last_sent.items()))
            if now - at < self.order_gap:
                break
            del self._last_sent[oldest]
        last = self._last_sent.get(workflow_id)
        return 0.0 if last is None else last + self.order_gap - now

    def _release(self, workflow_id: str) -> None:
        self._delayed.pop(workflow_id, None)
        self._queue.put_nowait(workflow_id)

    async def _drain(self) -> None:
        while True:
            workflow_id = await self._queue.get()
            self._pending.discard(workflow_id)
            # Stamped before the call: an event arriving while it is in flight waits its gap.
            self._last_sent[workflow_id] = self._clock()
            self._last_sent.move_to_end(workflow_id)
            self._in_flight += 1
            try:
                result = await self._signal(workflow_id)
            except Exception:  # a bug in a signaller must not stop the drain
                log.exception("waking %s failed", workflow_id)
                result = WakeResult.FAILED
            finally:
                self._in_flight -= 1
            self._count(workflow_id, result)

    def _count(self, workflow_id: str, result: WakeResult) -> None:
        if result is WakeResult.SENT:
            self.counts.sent += 1
        elif result is WakeResult.UNKNOWN:
            self.counts.unknown += 1
            log.info("no open workflow %s: webhook acknowledged, nothing woken", workflow_id)
        else:
            self.counts.failed += 1

    async def wait_idle(self, limit_seconds: float) -> bool:
        """True once nothing is pending or in flight (within `limit_seconds`)."""
        deadline = time.monotonic() + limit_seconds
        while not self.idle:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Deliver what is queued (bounded by `grace_seconds`), then stop. Wakes still waiting
        for their gap are dropped: the workflow's safety poll covers them."""
        for handle in self._delayed.values():
            handle.cancel()
        self._pending.difference_update(self._delayed)
        self._delayed.clear()
        await self.wait_idle(grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
