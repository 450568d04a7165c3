"""A storm of poll_now signals for one order: its history and provider calls stay bounded, and a
wake is never lost (a poll_now inside the 2 s gap after a poll starts polls when the gap ends).

Bound (workflows/order/handlers.py `poll_now`): a signal inside the gap adds its own
WorkflowExecutionSignaled event and at most one workflow task (3 events): <= 4 events; at most
one poll per POLL_NOW_MIN_GAP results, each ~12 events (timer, cancel, new wait). A storm of N
signals over T seconds: events <= 4*N + 12*(T/2 + 1) + c, provider polls <= T/2 + 2."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import Stage
from offramp.orders.names import CHECK_SELL_ORDER_ACTIVITY
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    HOUR_POLLS,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
    wait_stage,
)

SIGNALS = 1_000
GAP_SECONDS = 2.0
EVENTS_PER_SIGNAL = 4
EVENTS_PER_POLL = 12


async def test_poll_now_storm_is_bounded_and_loses_no_wake(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        # One run for the count (a lower budget would continue it as new mid-storm: see
        # test_continue_as_new.py).
        handle = await start_order(
            dev_env.client, task_queue, order_id, history_budget=40_000, **HOUR_POLLS
        )
        await wait_stage(handle, Stage.AWAITING_ORDER)
        events_before = len((await handle.fetch_history()).events)
        polls_before = await admin.requests_for(order_id)

        started = time.monotonic()
        limit = asyncio.Semaphore(20)

        async def wake() -> None:
            async with limit:
                await handle.signal("poll_now")

        await asyncio.gather(*(wake() for _ in range(SIGNALS)))
        # Ready now: the next wake must reach the provider even if it lands inside a gap (no
        # scheduled poll for an hour would find it).
        await admin.patch_order(order_id, ready_after_seconds=0)
        await admin.wait_for(
            order_id, lambda v: v.data.get("payAmount", {}).get("amount") is not None, what="ready"
        )
        await handle.signal("poll_now")
        await wait_stage(handle, Stage.TRACKING, Stage.SETTLED)
        storm_seconds = time.monotonic() - started
        history = (await handle.fetch_history()).events
        await handle.terminate("test done")

    # Up to the first poll of the order once ready: the storm's own events and polls.
    first_ready = next(
        i
        for i, e in enumerate(history)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == CHECK_SELL_ORDER_ACTIVITY
    )
    storm_events = first_ready - events_before
    deferred = sum(
        e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history[events_before:]
    )
    polls = await admin.requests_for(order_id) - polls_before
    gaps = storm_seconds / GAP_SECONDS + 2
    print(
        f"\n{SIGNALS + 1} poll_now in {storm_seconds:.1f}s: {storm_events} events, "
        f"{polls} provider polls, {deferred} deferred polls"
    )
    assert deferred >= 1  # wakes inside a gap were remembered, not dropped
    assert polls <= gaps + 1
    assert storm_events <= EVENTS_PER_SIGNAL * (SIGNALS + 1) + EVENTS_PER_POLL * gaps + 20
