"""The hot-wallet entity's review fixes, each on a real dev server (chain activities faked, so
their timing is under the test's control): a re-run whose reservation may have left the index
gets no new nonce; answers name their wallet; `payment_lookup` reports queued and attempt-less
reservations; no spinning while `reconcile` holds the lock; no answer lost to continue-as-new;
the queue is capped; old `reserve` reservations hold admission; a balance read keeps the debits
of reservations final while it ran.

The dev server suggests continue-as-new every 60 events, so the entity continues-as-new often."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.hot_wallet import HotWalletActivities
from offramp.chain.models import (
    BalancesInput,
    HotWalletInput,
    HotWalletState,
    NonceAnswer,
    NonceAnswerKind,
    NonceRequest,
    NonceRequestInput,
    NonceSettledSignal,
    PaymentLookup,
    ReservationStatus,
    ReserveRequest,
    ReserveResult,
    WalletBalances,
    WalletNonces,
    WalletNoncesInput,
    WalletPolicy,
    WalletSummary,
    WorkflowClosedInput,
)
from offramp.chain.redact import scrub
from tests.chain.support import wait_for
from tests.dev_server import dev_server
from tests.workflows.test_hot_wallet import params
from workflows.hot_wallet import HotWalletWorkflow

TOKEN = "0x" + "11" * 20


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server({"limit.historyCount.suggestContinueAsNew": 60}) as env:
        yield env


@workflow.defn(name="AnswerSink", sandboxed=False)
class AnswerSink:
    """Stands in for every payment: collects the entity's answers."""

    def __init__(self) -> None:
        self.answers: list[NonceAnswer] = []

    @workflow.signal
    def nonce_answer(self, answer: NonceAnswer) -> None:
        self.answers.append(answer)

    @workflow.query
    def got(self) -> list[NonceAnswer]:
        return self.answers

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="RerunAsker", sandboxed=False)
class RerunAsker:
    """A payment re-run: its first attempt waits for `go` and fails; the retry asks for a nonce
    through the real `request_nonce` activity (which adds the first run's start time)."""

    def __init__(self) -> None:
        self.go = False
        self.answer: NonceAnswer | None = None

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.signal
    def nonce_answer(self, answer: NonceAnswer) -> None:
        self.answer = answer

    @workflow.run
    async def run(self, ask: NonceRequestInput) -> str:
        if workflow.info().attempt == 1:
            await workflow.wait_condition(lambda: self.go)
            raise ApplicationError("first run fails")
        await workflow.execute_activity(
            "request_nonce", ask, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self.answer is not None)
        assert self.answer is not None
        return self.answer.kind.value


@dataclass
class Chain:
    """Fake reads; `nonces_gate` / `balances_gate` hold a read until the test opens them."""

    nonces_gate: asyncio.Event = field(default_factory=asyncio.Event)
    balances_gate: asyncio.Event = field(default_factory=asyncio.Event)
    nonce_reads: int = 0
    balance_reads: int = 0
    poor: bool = False  # balances read as zero

    def __post_init__(self) -> None:
        self.nonces_gate.set()
        self.balances_gate.set()

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name="read_wallet_nonces")
        async def read_wallet_nonces(inp: WalletNoncesInput) -> WalletNonces:
            self.nonce_reads += 1
            await self.nonces_gate.wait()
            return WalletNonces(latest=3, pending=3)

        @activity.defn(name="read_wallet_balances")
        async def read_wallet_balances(inp: BalancesInput) -> WalletBalances:
            self.balance_reads += 1
            await self.balances_gate.wait()
            have = 0 if self.poor else 10**30
            return WalletBalances(native_wei=have, tokens={t: have for t in inp.tokens})

        @activity.defn(name="workflow_closed")
        async def workflow_closed(inp: WorkflowClosedInput) -> bool:
            return False

        return [read_wallet_nonces, read_wallet_balances, workflow_closed]


@dataclass
class Entity:
    client: Client
    id: str
    sink: WorkflowHandle[AnswerSink, None]
    chain: Chain

    @property
    def handle(self) -> WorkflowHandle[HotWalletWorkflow, None]:
        return self.client.get_workflow_handle_for(HotWalletWorkflow.run, self.id)

    def request(self, payment_id: str, **fields: object) -> NonceRequest:
        return NonceRequest.model_validate(
            {
                "payment_id": payment_id,
                "payment_workflow_id": self.sink.id,
                "asset": "USDC",
                "amount_base_units": 1_000_000,
                "daily_cap_base_units": 0,
                "token_address": TOKEN,
                "gas_budget_wei": 10**15,
                "policy": WalletPolicy(),
                **fields,
            }
        )

    async def ask(self, payment_id: str, **fields: object) -> None:
        await self.handle.signal(
            HotWalletWorkflow.request_nonce, self.request(payment_id, **fields)
        )

    async def answers(self, payment_id: str) -> list[NonceAnswer]:
        got = await self.sink.query(AnswerSink.got)
        return [a for a in got if a.payment_id == payment_id]

    async def answer(self, payment_id: str, count: int = 1) -> NonceAnswer:
        async def enough() -> NonceAnswer | None:
            got = await self.answers(payment_id)
            return got[count - 1] if len(got) >= count else None

        return await wait_for(enough, f"answer {count} for {payment_id}", limit=90)

    async def settle(self, payment_id: str, nonce: int) -> None:
        await self.handle.signal(
            HotWalletWorkflow.nonce_settled,
            NonceSettledSignal(
                payment_id=payment_id, nonce=nonce, status=ReservationStatus.CONFIRMED
            ),
        )

    async def state(self) -> HotWalletState:
        return await self.handle.query(HotWalletWorkflow.get_state)

    async def failed_tasks(self) -> int:
        failed = 0
        async for event in self.handle.fetch_history_events():
            failed += event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        return failed


class _NoChains:
    settings = SimpleNamespace(chain=lambda name: None)


@pytest.fixture
def limits() -> dict[str, float]:
    """The entity's HotWalletLimits over the defaults (a test parametrizes `limits`)."""
    return {}


@pytest.fixture
async def entity(env: WorkflowEnvironment, limits: dict[str, float]) -> AsyncIterator[Entity]:
    chain = Chain()
    task_queue = f"fixes-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[HotWalletWorkflow, AnswerSink, RerunAsker],
        activities=[*chain.activities(), HotWalletActivities(cast(Any, _NoChains())).request_nonce],
        workflow_runner=UnsandboxedWorkflowRunner(),  # the stand-ins are defined in this module
        graceful_shutdown_timeout=timedelta(seconds=1),
    ):
        sink = await env.client.start_workflow(
            AnswerSink.run, id=f"sink-{uuid.uuid4()}", task_queue=task_queue
        )
        wallet_id = f"hot-wallet-fixes-{uuid.uuid4()}"
        await env.client.start_workflow(
            HotWalletWorkflow.run,
            HotWalletInput(params=params(in_flight_limit=1000, limits=limits)),
            id=wallet_id,
            task_queue=task_queue,
        )
        entity = Entity(env.client, wallet_id, sink, chain)

        async def started() -> bool:
            return (await entity.handle.query(HotWalletWorkflow.summary)).next_nonce is not None

        await wait_for(started, "the entity's first reconcile")
        yield entity
        for handle in (entity.handle, sink):
            with contextlib.suppress(Exception):
                await handle.terminate("test done")


async def grant(entity: Entity, payment_id: str) -> int:
    await entity.ask(payment_id)
    answer = await entity.answer(payment_id)
    assert answer.kind is NonceAnswerKind.GRANTED and answer.nonce is not None, answer
    return answer.nonce


@pytest.mark.parametrize("limits", [{"recent_limit": 2}])
async def test_a_rerun_whose_reservation_may_have_left_the_index_gets_no_new_nonce(
    entity: Entity,
) -> None:
    before_all = datetime.now(UTC) - timedelta(seconds=5)
    for pid in ("p1", "p2", "p3", "p4"):
        await entity.settle(pid, await grant(entity, pid))

    async def evicted() -> HotWalletState | None:
        state = await entity.state()
        return state if state.evicted_until is not None and not state.reservations else None

    state = await wait_for(evicted, "p1 and p2 to leave the index")
    assert "p1" not in state.recent and state.evicted_until is not None
    # p1 re-run (its first run started before the eviction): never a new nonce.
    await entity.ask("p1", rerun=True, first_started_at=before_all)
    answer = await entity.answer("p1", count=2)
    assert answer.kind is NonceAnswerKind.NEEDS_PERSON, answer
    # A re-run whose first run's start is unknown: the same.
    await entity.ask("q", rerun=True)
    assert (await entity.answer("q")).kind is NonceAnswerKind.NEEDS_PERSON
    # A re-run whose first run started after the eviction cannot have been evicted: granted.
    later = state.evicted_until + timedelta(seconds=1)
    await entity.ask("r", rerun=True, first_started_at=later)
    granted = await entity.answer("r")
    assert granted.kind is NonceAnswerKind.GRANTED and granted.nonce == state.next_nonce
    # Every answer names the wallet that gave it.
    assert {a.wallet_workflow_id for a in await entity.sink.query(AnswerSink.got)} == {entity.id}
    assert state.next_nonce is not None
    assert (await entity.state()).next_nonce == state.next_nonce + 1


@pytest.mark.parametrize("limits", [{"recent_limit": 1}])
async def test_a_retried_payment_run_carries_its_first_run_start(entity: Entity) -> None:
    """End to end through the activity: a retry whose first run started before the index lost
    reservations gets NEEDS_PERSON; one whose first run started after it is granted."""

    def ask(payment_id: str, workflow_id: str) -> NonceRequestInput:
        request = entity.request(payment_id, payment_workflow_id=workflow_id, rerun=True)
        return NonceRequestInput(
            params=params(in_flight_limit=1000), wallet_workflow_id=entity.id, request=request
        )

    async def start(payment_id: str) -> WorkflowHandle[RerunAsker, str]:
        workflow_id = f"rerun-{payment_id}-{uuid.uuid4()}"
        return await entity.client.start_workflow(
            RerunAsker.run,
            ask(payment_id, workflow_id),
            id=workflow_id,
            task_queue=(await entity.handle.describe()).task_queue,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )

    early = await start("early")
    await wait_for(lambda: _started(early), "the early run to start")
    for pid in ("e1", "e2", "e3"):
        await entity.settle(pid, await grant(entity, pid))

    async def evicted() -> HotWalletState | None:
        state = await entity.state()
        return state if state.evicted_until is not None and not state.reservations else None

    before = await wait_for(evicted, "reservations to leave the index")
    late = await start("late")
    await wait_for(lambda: _started(late), "the late run to start")
    for handle in (early, late):
        await handle.signal(RerunAsker.proceed)
    assert await asyncio.wait_for(early.result(), 90) == NonceAnswerKind.NEEDS_PERSON.value
    assert await asyncio.wait_for(late.result(), 90) == NonceAnswerKind.GRANTED.value
    after = await entity.state()
    assert before.next_nonce is not None and after.next_nonce == before.next_nonce + 1


async def _started(handle: WorkflowHandle[Any, Any]) -> bool:
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return True
    return False


async def test_payment_lookup_reports_a_queued_request_and_a_nonce_without_attempts(
    entity: Entity,
) -> None:
    nonce = await grant(entity, "held")
    await entity.handle.execute_update(HotWalletWorkflow.pause, "test")
    await entity.ask("queued")

    async def queued() -> PaymentLookup | None:
        found = await entity.handle.query(HotWalletWorkflow.payment_lookup, "queued")
        return found if found.queued else None

    await wait_for(queued, "the queued request")
    held = await entity.handle.query(HotWalletWorkflow.payment_lookup, "held")
    assert held.reservation is not None and held.reservation.nonce == nonce
    assert held.reservation.attempts == [] and not held.queued
    nothing = await entity.handle.query(HotWalletWorkflow.payment_lookup, "never")
    assert nothing == PaymentLookup()


async def test_a_request_during_a_slow_reconcile_fails_no_workflow_task(entity: Entity) -> None:
    entity.chain.nonces_gate.clear()
    reads = entity.chain.nonce_reads
    reconcile = asyncio.create_task(
        entity.handle.execute_update("reconcile", result_type=WalletSummary)
    )

    async def reading() -> bool:
        return entity.chain.nonce_reads > reads

    await wait_for(reading, "the slow reconcile's read")
    await entity.ask("during")

    async def task_after_signal() -> bool:
        seen = False
        async for event in entity.handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                seen = True
            elif seen and event.event_type in (
                EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
            ):
                return True
        return False

    await wait_for(task_after_signal, "the signal's workflow task to end", limit=60)
    # A spinning task ends only when the deadlock detector fails it: the wait above saw it.
    entity.chain.nonces_gate.set()
    summary: WalletSummary = await asyncio.wait_for(reconcile, timeout=60)
    assert summary.next_nonce is not None
    granted = await entity.answer("during")
    assert granted.kind is NonceAnswerKind.GRANTED
    assert await entity.failed_tasks() == 0


async def test_every_re_ask_is_answered_across_continue_as_new(entity: Entity) -> None:
    ids = [f"c{i}" for i in range(8)]
    for pid in ids:
        await entity.ask(pid)
    nonces = {pid: (await entity.answer(pid)).nonce for pid in ids}
    asks = 12
    for round_ in range(asks):  # bursts of re-asks while the entity continues-as-new often
        await asyncio.gather(*(entity.ask(pid) for pid in ids))
        if round_ % 3 == 2:
            await asyncio.gather(*(entity.answer(pid, count=round_ + 2) for pid in ids))
    for pid in ids:
        got = await entity.answer(pid, count=asks + 1)
        assert got.kind is NonceAnswerKind.GRANTED and got.nonce == nonces[pid]
    state = await entity.state()
    assert state.runs > 2, state.runs
    assert await entity.failed_tasks() == 0


@pytest.mark.parametrize("limits", [{"queue_limit": 3}])
async def test_the_queue_is_capped(entity: Entity) -> None:
    await entity.handle.execute_update(HotWalletWorkflow.pause, "test")
    for i in range(5):
        await entity.ask(f"w{i}")
    for pid in ("w3", "w4"):
        answer = await entity.answer(pid)
        assert answer.kind is NonceAnswerKind.RETRY_LATER and answer.retry_after_seconds
    assert len((await entity.state()).queue) == 3
    await entity.handle.execute_update(HotWalletWorkflow.resume)
    for pid in ("w0", "w1", "w2"):
        assert (await entity.answer(pid)).kind is NonceAnswerKind.GRANTED


async def test_an_open_reservation_of_the_old_protocol_holds_admission(entity: Entity) -> None:
    old = await entity.handle.execute_update(
        "reserve",
        ReserveRequest(payment_id="old", asset="USDC", amount_base_units=5, daily_cap_base_units=0),
        result_type=ReserveResult,
    )
    await entity.ask("new")

    async def queued() -> bool:
        return len((await entity.state()).queue) == 1

    await wait_for(queued, "the new request queued")
    assert await entity.answers("new") == []
    await entity.settle("old", old.nonce)
    granted = await entity.answer("new")
    assert granted.kind is NonceAnswerKind.GRANTED and granted.nonce == old.nonce + 1


async def test_a_balance_read_keeps_debits_of_reservations_final_while_it_ran(
    entity: Entity,
) -> None:
    first = await grant(entity, "d1")  # the first read happened for it
    entity.chain.balances_gate.clear()
    reads = entity.chain.balance_reads
    # Force a re-read: balances older than funds_recheck_seconds (0 here) are read again.
    await entity.ask("d2", policy=WalletPolicy(funds_recheck_seconds=0))

    async def reading() -> bool:
        return entity.chain.balance_reads > reads

    await wait_for(reading, "the balance read for d2")
    await entity.settle("d1", first)  # final while the read runs: may be missing from it

    async def debited() -> HotWalletState | None:
        state = await entity.state()
        return state if "d1" in state.recent else None

    await wait_for(debited, "d1 final")
    entity.chain.balances_gate.set()
    await entity.answer("d2")
    state = await entity.state()
    assert state.debited_since_read.get(TOKEN) == 1_000_000, state.debited_since_read


async def test_the_funds_recheck_backs_off_while_nobody_tops_up(entity: Entity) -> None:
    entity.chain.poor = True
    await entity.ask("poor", policy=WalletPolicy(funds_recheck_seconds=1))
    assert (await entity.answer("poor")).kind is NonceAnswerKind.WAITING_FUNDS

    async def backed_off() -> HotWalletState | None:
        state = await entity.state()
        return state if (state.funds_recheck_seconds or 0) >= 8 else None

    reads = entity.chain.balance_reads
    await wait_for(backed_off, "the recheck interval to reach 8 s", limit=90)
    assert entity.chain.balance_reads - reads <= 4  # 1 + 2 + 4 s: not one read a second
    entity.chain.poor = False
    granted = await entity.answer("poor", count=2)  # the same WAITING answer is not repeated
    assert granted.kind is NonceAnswerKind.GRANTED
    assert (await entity.state()).funds_recheck_seconds is None


async def test_a_failed_balance_read_names_no_rpc_url() -> None:
    """The node's error (here an aiohttp-like message with the URL and key) is redacted like
    the chain activities redact theirs: no secret reaches the failure or the history."""
    secret = "https://rpc.example.com/v3/s3cr3tkey"

    class Runtime:
        def redact(self, text: str) -> str:
            return scrub(text, [secret, "s3cr3tkey"])

        async def served(self, chain: str) -> object:
            raise RuntimeError(f"429, message='Too Many Requests', url='{secret}'")

    activities = HotWalletActivities(cast(Any, Runtime()))
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.read_wallet_balances, BalancesInput(chain="x", address=TOKEN)
        )
    assert "s3cr3tkey" not in str(raised.value) and "rpc.example.com" not in str(raised.value)
    assert raised.value.type == "RuntimeError" and raised.value.__cause__ is None
