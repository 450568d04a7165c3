"""The receiver on real HTTP, waking real order workflows on the dev server: a signed event wakes
its order; every refused request (and a replay, and an unknown order) changes nothing, checked on
the workflow's own history."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import Stage, workflow_id_for
from offramp.orders.names import POLL_NOW_SIGNAL
from offramp.simulator.admin import SimulatorAdmin
from offramp.webhooks.signatures import KADO_SIGNATURE_HEADER, KADO_TIMESTAMP_HEADER, sign_kado
from tests.e2e.support import (
    HOUR_POLLS,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    new_order_id,
    start_order,
    wait_stage,
)
from tests.webhooks.conftest import MAX_BODY, RunningReceiver, kado_event

CANCEL_REQUESTED = PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
# The workflow ignores poll_now within 2 s of starting a poll (POLL_NOW_MIN_GAP): a wake that must
# be acted on is sent once the current poll is older than this.
POLL_AGE_FOR_WAKE = 3.0


async def waiting_on_provider(handle: WorkflowHandle[Any, Any], min_age: float = 0.0) -> int | None:
    """Wait until the workflow sits in a provider wait (no workflow task pending, its activity
    not being cancelled) scheduled at least `min_age` s ago; the history's length then. None if
    the workflow closed meanwhile."""
    async with asyncio.timeout(90):
        while True:
            description = await handle.describe()
            if description.status is not WorkflowExecutionStatus.RUNNING:
                return None
            raw = description.raw_description
            activities = raw.pending_activities
            quiet = (
                not raw.HasField("pending_workflow_task")
                and len(activities) == 1
                and activities[0].state != CANCEL_REQUESTED
            )
            if quiet:
                events = (await handle.fetch_history()).events
                scheduled = [
                    e
                    for e in events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                ]
                age = time.time() - scheduled[-1].event_time.ToDatetime().timestamp()
                if age >= min_age and len(events) == len((await handle.fetch_history()).events):
                    return len(events)
            await asyncio.sleep(0.1)


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    return len((await handle.fetch_history()).events)


async def signals_in_history(handle: WorkflowHandle[Any, Any]) -> int:
    """poll_now signals the workflow received (the payment child signals its progress too)."""
    events = (await handle.fetch_history()).events
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == POLL_NOW_SIGNAL
        for e in events
    )


async def start_waiting_order(
    dev_env: WorkflowEnvironment, admin: SimulatorAdmin, task_queue: str
) -> tuple[str, WorkflowHandle[Any, Any]]:
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    handle = await start_order(dev_env.client, task_queue, order_id, **HOUR_POLLS)
    await wait_stage(handle, Stage.AWAITING_ORDER)
    return order_id, handle


async def test_a_signed_event_wakes_the_order_long_before_its_next_poll(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    hooks: RunningReceiver,
) -> None:
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        order_id, handle = await start_waiting_order(dev_env, admin, task_queue)
        await admin.patch_order(order_id, ready_after_seconds=0)
        ready = await admin.wait_for(
            order_id,
            lambda v: v.data.get("payAmount", {}).get("amount") is not None,
            what="ready",
        )
        # Ready at the provider; the workflow would find out in an hour. The webhook says so now.
        assert await waiting_on_provider(handle, POLL_AGE_FOR_WAKE) is not None
        reply = await hooks.send_kado(kado_event(order_id, ready.data))
        assert (reply.status_code, reply.json()) == (200, {"status": "accepted"})
        await wait_stage(handle, Stage.TRACKING, Stage.SETTLED)
        await admin.wait_for_phase(order_id, "settled")
        # Tracking's first fetch may have come before the provider settled: then the settled
        # event wakes it again (without it the order would wait an hour).
        if await waiting_on_provider(handle, POLL_AGE_FOR_WAKE) is not None:
            settled = (await admin.order(order_id)).data
            assert (await hooks.send_kado(kado_event(order_id, settled))).status_code == 200
        result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.outcome is Stage.SETTLED
    assert hooks.waker.counts.sent >= 1 and hooks.waker.counts.failed == 0
    assert await signals_in_history(handle) == hooks.waker.counts.sent


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def refused_requests(event: dict[str, Any], secret: SecretStr) -> list[tuple[str, bytes, Any, int]]:
    """(what, body, headers, expected status): each one a way to be refused."""
    body = json.dumps(event).encode()
    now = int(time.time())
    good = sign_kado(body, secret, now)
    forged = sign_kado(body, SecretStr("not-the-secret"), now)
    oversized = json.dumps({**event, "pad": "x" * MAX_BODY}).encode()
    not_json = b"{not json"
    no_order = json.dumps({"id": event["id"], "data": {}}).encode()
    return [
        ("wrong signature", body, forged, 401),
        ("missing signature header", body, {KADO_TIMESTAMP_HEADER: str(now)}, 401),
        (
            "missing timestamp header",
            body,
            {KADO_SIGNATURE_HEADER: good[KADO_SIGNATURE_HEADER]},
            401,
        ),
        ("stale timestamp", body, sign_kado(body, secret, now - 3600), 401),
        ("body changed after signing", body + b" ", good, 401),
        ("oversized body", oversized, sign_kado(oversized, secret, now), 413),
        ("non-JSON body", not_json, sign_kado(not_json, secret, now), 400),
        ("no order id", no_order, sign_kado(no_order, secret, now), 400),
    ]


async def test_refused_requests_change_nothing(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    hooks: RunningReceiver,
) -> None:
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        order_id, handle = await start_waiting_order(dev_env, admin, task_queue)
        before = await waiting_on_provider(handle, POLL_AGE_FOR_WAKE)
        event = kado_event(order_id)
        for what, body, headers, status in refused_requests(event, hooks.secret):
            reply = await hooks.post("kado", body, headers)
            assert reply.status_code == status, f"{what}: {reply.status_code} {reply.text}"
            assert "error" in reply.json(), what
        # Streamed (no Content-Length): the size limit holds while reading.
        big = json.dumps({**event, "pad": "y" * MAX_BODY}).encode()
        chunked = await hooks.http.post(
            f"{hooks.base_url}/webhooks/kado",
            content=chunks(big[:1000], big[1000:]),
            headers=sign_kado(big, hooks.secret, int(time.time())),
        )
        assert chunked.status_code == 413
        assert hooks.waker.idle and hooks.waker.counts.queued == 0
        assert await history_length(handle) == before
        assert await signals_in_history(handle) == 0
        # Control: the same event id, properly signed, is not spoiled by the refusals and does
        # reach the workflow's history.
        reply = await hooks.send_kado(event)
        assert reply.json() == {"status": "accepted"}
        assert await hooks.waker.wait_idle(30) and hooks.waker.counts.sent == 1
        assert await signals_in_history(handle) == 1
        await handle.terminate("test done")


async def test_a_replayed_event_id_wakes_nothing(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    hooks: RunningReceiver,
) -> None:
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        order_id, handle = await start_waiting_order(dev_env, admin, task_queue)
        await waiting_on_provider(handle, POLL_AGE_FOR_WAKE)
        event = kado_event(order_id)
        body = json.dumps(event).encode()
        headers = sign_kado(body, hooks.secret, int(time.time()))
        assert (await hooks.post("kado", body, headers)).json() == {"status": "accepted"}
        assert await hooks.waker.wait_idle(30) and hooks.waker.counts.sent == 1
        after = await waiting_on_provider(handle)  # the wake's own events are in
        assert after is not None and await signals_in_history(handle) == 1
        # The captured request again, and the same event re-signed with a fresh timestamp (as
        # a provider's redelivery is): both acknowledged, neither wakes anything.
        exact = await hooks.post("kado", body, headers)
        resigned = await hooks.send_kado(event)
        for reply in (exact, resigned):
            assert (reply.status_code, reply.json()) == (200, {"status": "duplicate"})
        assert hooks.waker.idle and hooks.waker.counts.queued == 1
        assert await history_length(handle) == after
        assert hooks.waker.counts.sent == 1
        await handle.terminate("test done")


async def test_an_unknown_order_is_acknowledged_and_starts_nothing(
    dev_env: WorkflowEnvironment, hooks: RunningReceiver
) -> None:
    order_id = new_order_id()
    reply = await hooks.send_kado(kado_event(order_id))
    assert (reply.status_code, reply.json()) == (200, {"status": "accepted"})
    kidapay = await hooks.send_kidapay({"order": {"order_id": order_id, "status": "PAID"}})
    assert (kidapay.status_code, kidapay.json()) == (200, {"status": "accepted"})
    assert await hooks.waker.wait_idle(30)
    counts = hooks.waker.counts
    assert (counts.unknown, counts.sent, counts.failed) == (2, 0, 0)
    for workflow_id in (workflow_id_for(order_id), f"kidapay-sell-{order_id}"):
        with pytest.raises(RPCError) as missing:
            await dev_env.client.get_workflow_handle(workflow_id).describe()
        assert missing.value.status is RPCStatusCode.NOT_FOUND


async def test_routes_and_health(hooks: RunningReceiver) -> None:
    http = hooks.http
    assert (await http.post(f"{hooks.base_url}/webhooks/baanx", content=b"{}")).status_code == 404
    assert (await http.get(f"{hooks.base_url}/webhooks/kado")).status_code == 405
    unsigned = await hooks.post("kidapay", b"{}", {"x-kidapay-signature": "sha256=" + "0" * 64})
    assert unsigned.status_code == 401 and unsigned.json() == {"error": "missing timestamp header"}
    health = (await http.get(f"{hooks.base_url}/health")).json()
    assert health["ok"] and health["routes"] == ["/webhooks/kado", "/webhooks/kidapay"]
    assert health["requests"] == {"kidapay unauthenticated": 1}
    assert hooks.secret.get_secret_value() not in json.dumps(health)
