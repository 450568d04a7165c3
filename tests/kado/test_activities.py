"""Kado activities through a real Temporal worker (local dev server) against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.provider import ProviderActivities, to_application_error
from offramp.providers.kado.adapter import ADAPTER as KADO
from offramp.providers.kado.client import KadoClient
from offramp.providers.kado.errors import (
    NOT_CHANGED_ERROR_TYPE,
    KadoMalformedResponse,
    KadoOrderNotFound,
    KadoRateLimited,
    KadoServerError,
    KadoTransportError,
)
from offramp.providers.kado.models import TransferStatus, WaitForOrderChangeInput
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.faults import FaultConfig, MalformedKind
from tests.conftest import KadoSimulator
from tests.kado.workflows import FetchOrderWorkflow, WaitForChangeWorkflow, WaitThenWakeWorkflow

# Polls this fast so a test sees many of them quickly; production uses seconds to minutes.
FAST_POLL = {"initial_interval_seconds": 0.05, "max_interval_seconds": 0.2, "backoff": 1.5}


@pytest.fixture
async def kado(kado_simulator: KadoSimulator) -> AsyncIterator[KadoClient]:
    async with KadoClient(kado_simulator.base_url, timeout_seconds=5) as client:
        yield client


@pytest.fixture
async def worker(dev_client: Client, task_queue: str, kado: KadoClient) -> AsyncIterator[Worker]:
    activities = ProviderActivities(KADO, kado)
    async with Worker(
        dev_client,
        task_queue=task_queue,
        workflows=[FetchOrderWorkflow, WaitForChangeWorkflow, WaitThenWakeWorkflow],
        activities=[activities.fetch_order, activities.wait_for_order_change],
    ) as running:
        yield running


async def history_summary(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """(events in the history, attempt number of the activity's final run)."""
    history = await handle.fetch_history()
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    return len(history.events), max(attempts, default=0)


# ---- error mapping ---------------------------------------------------------------------------


def test_error_mapping() -> None:
    rate = to_application_error(KadoRateLimited("o", 7.0))
    assert rate.type == "KadoRateLimited" and not rate.non_retryable
    assert rate.next_retry_delay == timedelta(seconds=7)
    assert rate.category is ApplicationErrorCategory.BENIGN

    # The wait's own interval wins when it is longer than Retry-After.
    assert to_application_error(KadoRateLimited("o", 1.0), 5.0).next_retry_delay == timedelta(
        seconds=5
    )
    server = to_application_error(KadoServerError("o", 503))
    assert server.type == "KadoServerError" and not server.non_retryable
    assert server.next_retry_delay is None  # the workflow's retry policy decides
    assert to_application_error(KadoTransportError("o", "timeout")).type == "KadoTransportError"

    missing = to_application_error(KadoOrderNotFound("o", "gone", status_code=404))
    assert missing.type == "KadoOrderNotFound" and missing.non_retryable
    assert missing.details[0]["provider_message"] == "gone"

    bad = to_application_error(KadoMalformedResponse("o", "payAmount.amount", "is zero"))
    assert bad.type == "KadoMalformedResponse" and bad.non_retryable
    assert bad.details[0]["field"] == "payAmount.amount"


# ---- fetch -----------------------------------------------------------------------------------


FETCHES = 6


async def test_fetch_succeeds_through_5xx_and_429_bursts(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    # 30% of answers are 503; every 5 requests start with a burst of two 429s (Retry-After: 1).
    faults = FaultConfig(
        error_rate=0.3, rate_limit_burst=2, rate_limit_every=3, retry_after_seconds=1, seed=4
    )
    created = await sim_admin.create_order(amount="42.5", faults=faults)

    for _ in range(FETCHES):
        order = await dev_client.execute_workflow(
            FetchOrderWorkflow.run,
            created.order_id,
            id=f"fetch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert order.id == created.order_id and order.is_ready_for_deposit

    view = await sim_admin.order(created.order_id)
    print(
        f"\n{FETCHES} fetches under 30% 5xx + 429 bursts: {view.requests} HTTP calls "
        f"({view.responses})"
    )
    assert view.responses.get("429", 0) >= 2 and view.responses.get("503", 0) >= 1
    assert view.responses["200"] == FETCHES
    assert view.requests <= 4 * FETCHES


async def test_fetch_of_a_missing_order_fails_once_and_does_not_retry(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    order_id = uuid.uuid4().hex[:24]
    with pytest.raises(WorkflowFailureError) as info:
        await dev_client.execute_workflow(
            FetchOrderWorkflow.run,
            order_id,
            id=f"fetch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    cause = info.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "KadoOrderNotFound" and cause.cause.non_retryable
    assert await sim_admin.requests_for(order_id) == 1


async def test_fetch_of_a_malformed_order_names_the_field(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    created = await sim_admin.create_order(overrides={"depositAddress": "0xnot-an-address"})
    with pytest.raises(WorkflowFailureError) as info:
        await dev_client.execute_workflow(
            FetchOrderWorkflow.run,
            created.order_id,
            id=f"fetch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    cause = info.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "KadoMalformedResponse"
    assert cause.cause.details[0]["field"] == "depositAddress"
    assert await sim_admin.requests_for(created.order_id) == 1


# ---- wait for a change -----------------------------------------------------------------------


def _error_type(record: logging.LogRecord) -> str | None:
    error = record.exc_info[1] if record.exc_info else None
    return error.type if isinstance(error, ApplicationError) else None


async def wait_for_polls(sim_admin: SimulatorAdmin, order_id: str, polls: int) -> None:
    deadline = time.monotonic() + 60
    while await sim_admin.requests_for(order_id) < polls:
        assert time.monotonic() < deadline, f"fewer than {polls} polls in 60 s"
        await asyncio.sleep(0.05)


async def test_waiting_costs_a_fixed_number_of_history_events(
    dev_client: Client,
    task_queue: str,
    worker: Worker,
    sim_admin: SimulatorAdmin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="temporalio.activity")
    # A: the order has already changed, so the first poll returns.
    quick = await sim_admin.create_order(amount="1", overrides={"transferStatus": "pending"})
    handle_quick = await dev_client.start_workflow(
        WaitForChangeWorkflow.run,
        WaitForOrderChangeInput(
            order_id=quick.order_id, last_transfer_status=TransferStatus.UNINITIATED, **FAST_POLL
        ),
        id=f"wait-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert (await handle_quick.result()).transfer_status is TransferStatus.PENDING

    # B: the order changes only after many polls.
    slow = await sim_admin.create_order(amount="1")
    handle_slow = await dev_client.start_workflow(
        WaitForChangeWorkflow.run,
        WaitForOrderChangeInput(
            order_id=slow.order_id, last_transfer_status=TransferStatus.UNINITIATED, **FAST_POLL
        ),
        id=f"wait-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await wait_for_polls(sim_admin, slow.order_id, 20)
    await sim_admin.patch_order(slow.order_id, overrides={"transferStatus": "pending"})
    result = await handle_slow.result()
    assert result.transfer_status is TransferStatus.PENDING

    quick_events, quick_attempts = await history_summary(handle_quick)
    slow_events, slow_attempts = await history_summary(handle_slow)
    polls = await sim_admin.requests_for(slow.order_id)
    print(
        f"\nwait: 1 poll → {quick_events} history events; "
        f"{polls} polls (attempt {slow_attempts}) → {slow_events} history events"
    )
    assert quick_attempts == 1 and slow_attempts >= 20 and polls >= 20
    assert slow_events == quick_events == 11
    # "Not yet" is BENIGN: the SDK logs it at DEBUG, never as a warning with a traceback.
    not_yet = [r for r in caplog.records if _error_type(r) == NOT_CHANGED_ERROR_TYPE]
    assert len(not_yet) >= 20
    assert all(r.levelno == logging.DEBUG for r in not_yet)


async def test_wait_returns_when_the_order_becomes_ready(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    created = await sim_admin.create_order(amount="3.5", ready_after_seconds=3600)
    handle = await dev_client.start_workflow(
        WaitForChangeWorkflow.run,
        WaitForOrderChangeInput(order_id=created.order_id, await_ready=True, **FAST_POLL),
        id=f"wait-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await wait_for_polls(sim_admin, created.order_id, 3)
    await sim_admin.patch_order(created.order_id, ready_after_seconds=0)
    order = await handle.result()
    assert order.is_ready_for_deposit
    assert order.deposit_address == created.deposit_address


async def test_wait_keeps_polling_through_faults(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    faults = FaultConfig(
        error_rate=0.3, rate_limit_burst=1, rate_limit_every=4, retry_after_seconds=0, seed=3
    )
    created = await sim_admin.create_order(
        amount="1", faults=faults, overrides={"transferStatus": "settled"}
    )
    order = await dev_client.execute_workflow(
        WaitForChangeWorkflow.run,
        WaitForOrderChangeInput(
            order_id=created.order_id,
            last_transfer_status=TransferStatus.PENDING,
            **FAST_POLL,
        ),
        id=f"wait-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert order.is_settled


async def test_a_pending_wait_can_be_cancelled_to_poll_now(
    dev_client: Client, task_queue: str, worker: Worker, sim_admin: SimulatorAdmin
) -> None:
    created = await sim_admin.create_order(amount="1")
    slow_poll = {"initial_interval_seconds": 0.05, "max_interval_seconds": 120, "backoff": 1e5}
    handle = await dev_client.start_workflow(
        WaitThenWakeWorkflow.run,
        WaitForOrderChangeInput(
            order_id=created.order_id, last_transfer_status=TransferStatus.UNINITIATED, **slow_poll
        ),
        id=f"wake-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    # Attempt 1 at once, attempt 2 after 0.05 s, then the next poll is 2 minutes away (a delay
    # past schedule_to_close would end the activity with a timeout instead).
    await wait_for_polls(sim_admin, created.order_id, 2)
    await handle.signal(WaitThenWakeWorkflow.poll_now)
    assert await handle.result() == "woken: uninitiated"
    assert await sim_admin.requests_for(created.order_id) == 3  # two polls + the woken fetch


@pytest.mark.parametrize("kind", ["html", "truncated"])
async def test_after_payment_a_malformed_answer_is_retried_on_the_poll_cadence(
    kado: KadoClient, sim_admin: SimulatorAdmin, kind: str
) -> None:
    faults = FaultConfig(malformed_rate=1.0, malformed_kind=MalformedKind(kind))
    created = await sim_admin.create_order(amount="1", faults=faults)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=3)
    wait = ProviderActivities(KADO, kado).wait_for_order_change
    request = WaitForOrderChangeInput(order_id=created.order_id, **FAST_POLL)
    # Before payment (the default): not retryable, the workflow decides.
    with pytest.raises(ApplicationError) as before:
        await env.run(wait, request)
    assert before.value.type == "KadoMalformedResponse" and before.value.non_retryable
    # After payment: retryable, after the adaptive delay of this attempt, without a traceback.
    with pytest.raises(ApplicationError) as after:
        await env.run(wait, request.model_copy(update={"retry_malformed": True}))
    error = after.value
    assert error.type == "KadoMalformedResponse" and not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=request.delay_seconds(3))
    assert error.category is ApplicationErrorCategory.BENIGN
    assert error.details[0]["field"] == "body"
