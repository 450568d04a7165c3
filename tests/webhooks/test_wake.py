"""The wake queue's rules, with a recording signaller in place of Temporal (the HTTP tests use the
real one): coalescing, the per-order gap (delayed, never dropped), the bound, failures."""

from __future__ import annotations

import asyncio

from offramp.webhooks.wake import Offer, Waker, WakeResult


class Recorder:
    def __init__(self, result: WakeResult = WakeResult.SENT) -> None:
        self.calls: list[str] = []
        self.result = result
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, workflow_id: str) -> WakeResult:
        await self.gate.wait()
        self.calls.append(workflow_id)
        return self.result


async def test_wakes_are_delivered_and_coalesced_while_pending() -> None:
    signal = Recorder()
    signal.gate.clear()  # hold the first delivery in flight
    waker = Waker(signal, concurrency=1, order_gap_seconds=0)
    waker.start()
    try:
        assert waker.offer("wf-a") is Offer.QUEUED
        await asyncio.sleep(0.05)  # wf-a is now in flight
        assert waker.offer("wf-b") is Offer.QUEUED
        assert waker.offer("wf-b") is Offer.COALESCED
        assert waker.offer("wf-b") is Offer.COALESCED
        signal.gate.set()
        assert await waker.wait_idle(5)
    finally:
        await waker.stop()
    assert signal.calls == ["wf-a", "wf-b"]
    assert (waker.counts.queued, waker.counts.coalesced, waker.counts.sent) == (2, 2, 2)


async def test_a_wake_inside_the_gap_is_delivered_when_the_gap_ends() -> None:
    signal = Recorder()
    waker = Waker(signal, concurrency=2, order_gap_seconds=0.5)
    waker.start()
    loop = asyncio.get_running_loop()
    try:
        waker.offer("wf")
        assert await waker.wait_idle(5)
        first = loop.time()
        assert waker.offer("wf") is Offer.QUEUED  # inside the gap: delayed
        assert waker.offer("wf") is Offer.COALESCED
        assert signal.calls == ["wf"]
        assert await waker.wait_idle(5)
        assert loop.time() - first >= 0.4
    finally:
        await waker.stop()
    assert signal.calls == ["wf", "wf"]


async def test_the_pending_set_is_bounded() -> None:
    signal = Recorder()
    signal.gate.clear()
    waker = Waker(signal, concurrency=1, max_pending=2, order_gap_seconds=0)
    waker.start()
    try:
        waker.offer("in-flight")
        await asyncio.sleep(0.05)
        assert [waker.offer(w) for w in ("a", "b", "c")] == [Offer.QUEUED, Offer.QUEUED, Offer.FULL]
        assert waker.counts.full == 1 and waker.pending == 2
        signal.gate.set()
        assert await waker.wait_idle(5)
    finally:
        await waker.stop()
    assert signal.calls == ["in-flight", "a", "b"]


async def test_unknown_and_failed_wakes_are_counted_and_the_drain_goes_on() -> None:
    signal = Recorder(WakeResult.UNKNOWN)
    waker = Waker(signal, concurrency=1, order_gap_seconds=0)
    waker.start()
    try:
        waker.offer("gone")
        assert await waker.wait_idle(5)
        signal.result = WakeResult.FAILED
        waker.offer("flaky")
        assert await waker.wait_idle(5)

        async def broken(workflow_id: str) -> WakeResult:
            raise RuntimeError("bug")

        waker._signal = broken
        waker.offer("bug")
        assert await waker.wait_idle(5)
        waker._signal = Recorder()
        waker.offer("ok")
        assert await waker.wait_idle(5)
    finally:
        await waker.stop()
    counts = waker.counts
    assert (counts.unknown, counts.failed, counts.sent) == (1, 2, 1)


async def test_stop_drops_wakes_still_waiting_for_their_gap() -> None:
    signal = Recorder()
    waker = Waker(signal, concurrency=1, order_gap_seconds=60)
    waker.start()
    waker.offer("wf")
    assert await waker.wait_idle(5)
    waker.offer("wf")  # due in a minute
    assert not waker.idle
    await waker.stop(grace_seconds=1)
    assert waker.idle and signal.calls == ["wf"]
