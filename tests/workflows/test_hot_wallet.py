"""The hot-wallet entity on its own (chain activities faked): idempotent nonces across
continue-as-new, pause/resume, the in-flight limit, release and abandonment fills, reconcile.

A dev server of its own suggests continue-as-new after 40 events, so the entity continues-as-new
many times here; every allocation must survive it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from offramp.chain.models import (
    FillOutcome,
    FillRequest,
    HotWalletInput,
    HotWalletLimits,
    HotWalletParams,
    HotWalletState,
    NonceSettledSignal,
    ReleaseSignal,
    ReservationStatus,
    ReserveRequest,
    ReserveResult,
    SendTuning,
    SetNonceRequest,
    TxBroadcastSignal,
    WalletNonces,
    WalletNoncesInput,
    WalletSummary,
    WorkflowClosedInput,
)
from offramp.converter import DATA_CONVERTER
from tests.chain.support import wait_for
from tests.cli.conftest import CliResult, base_env, run_command, temporal_env
from tests.dev_server import dev_server
from workflows.hot_wallet import (
    ERR_IN_FLIGHT_LIMIT,
    ERR_PAUSED,
    ERR_RELEASED,
    HotWalletWorkflow,
)

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
async def can_env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server({"limit.historyCount.suggestContinueAsNew": 40}) as env:
        yield env


@dataclass
class FakeChain:
    nonces: WalletNonces = field(default_factory=lambda: WalletNonces(latest=5, pending=7))
    closed: set[str] = field(default_factory=set)

    def activities(self) -> list[object]:
        @activity.defn(name="read_wallet_nonces")
        async def read_wallet_nonces(inp: WalletNoncesInput) -> WalletNonces:
            return self.nonces

        @activity.defn(name="workflow_closed")
        async def workflow_closed(inp: WorkflowClosedInput) -> bool:
            return inp.workflow_id in self.closed

        return [read_wallet_nonces, workflow_closed]


@workflow.defn(name="NonceFill", sandboxed=False)
class FakeFill:
    """Stands in for the real fill: reports the nonce filled at once."""

    @workflow.run
    async def run(self, request: FillRequest) -> FillOutcome:
        await workflow.get_external_workflow_handle(request.wallet_workflow_id).signal(
            "nonce_settled",
            NonceSettledSignal(
                payment_id=request.fill_id,
                nonce=request.nonce,
                status=ReservationStatus.FILLED,
                tx_hash="0x" + "ab" * 32,
            ),
        )
        return FillOutcome(nonce=request.nonce, status=ReservationStatus.FILLED)


def params(*, limits: Mapping[str, float] | None = None, **tuning: float) -> HotWalletParams:
    """Test params; `limits`: HotWalletLimits fields over the defaults (small budgets)."""
    values: dict[str, float] = {
        "confirmations": 1,
        "max_fee_per_gas_cap_wei": 10**12,
        "bump_after_seconds": 60,
        "poll_interval_seconds": 1,
        "rpc_timeout_seconds": 10,
        "in_flight_limit": 1000,
        "reservation_timeout_seconds": 300,
        **tuning,
    }
    return HotWalletParams(
        chain="fake",
        chain_id=1,
        address=ADDRESS,
        tuning=SendTuning.model_validate(values),
        limits=HotWalletLimits.model_validate(limits or {}),
    )


@dataclass
class Wallet:
    client: Client
    task_queue: str
    id: str
    params: HotWalletParams

    async def reserve(self, payment_id: str, amount: int = 1, cap: int = 0) -> ReserveResult:
        # The old protocol's caller (the reserve_nonce activity) retries an update the server
        # aborted (its speculative workflow task lost to a concurrent signal's task: "workflow
        # update was aborted" / "unexpected workflow task failure"); so does this helper.
        for _ in range(20):
            try:
                return await self._reserve(payment_id, amount, cap)
            except RPCError as exc:
                if exc.status not in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.UNAVAILABLE):
                    raise
                await asyncio.sleep(0.2)
        return await self._reserve(payment_id, amount, cap)

    async def _reserve(self, payment_id: str, amount: int, cap: int) -> ReserveResult:
        result: ReserveResult = await self.client.execute_update_with_start_workflow(
            "reserve",
            ReserveRequest(
                payment_id=payment_id,
                asset="USDC",
                amount_base_units=amount,
                daily_cap_base_units=cap,
                payment_workflow_id=f"payment-{payment_id}",
            ),
            start_workflow_operation=WithStartWorkflowOperation(
                HotWalletWorkflow.run,
                HotWalletInput(params=self.params),
                id=self.id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            ),
            result_type=ReserveResult,
        )
        return result

    @property
    def handle(self) -> WorkflowHandle[HotWalletWorkflow, None]:
        return self.client.get_workflow_handle_for(HotWalletWorkflow.run, self.id)

    async def state(self) -> HotWalletState:
        return await self.handle.query(HotWalletWorkflow.get_state)

    async def settle(self, payment_id: str, nonce: int) -> None:
        await self.handle.signal(
            HotWalletWorkflow.nonce_settled,
            NonceSettledSignal(
                payment_id=payment_id, nonce=nonce, status=ReservationStatus.CONFIRMED
            ),
        )


@pytest.fixture
async def fake_chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
async def wallet(can_env: WorkflowEnvironment, fake_chain: FakeChain) -> AsyncIterator[Wallet]:
    task_queue = f"hw-{uuid.uuid4()}"
    async with Worker(
        can_env.client,
        task_queue=task_queue,
        workflows=[HotWalletWorkflow, FakeFill],
        activities=fake_chain.activities(),  # type: ignore[arg-type]
        graceful_shutdown_timeout=timedelta(seconds=1),
    ):
        wallet = Wallet(can_env.client, task_queue, f"hot-wallet-test-{uuid.uuid4()}", params())
        yield wallet
        with contextlib.suppress(Exception):  # the entity runs forever: end it
            await wallet.handle.terminate("test done")


def _error_type(err: WorkflowUpdateFailedError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_nonces_survive_continue_as_new(wallet: Wallet, can_env: WorkflowEnvironment) -> None:
    ids = [f"p{i}" for i in range(60)]
    nonces: dict[str, int] = {}
    for batch in range(0, len(ids), 6):  # concurrent updates while it continues-as-new
        results = await asyncio.gather(*(wallet.reserve(pid) for pid in ids[batch : batch + 6]))
        nonces.update(zip(ids[batch : batch + 6], (r.nonce for r in results), strict=True))
        for pid in ids[batch : batch + 3]:
            await wallet.settle(pid, nonces[pid])
    assert sorted(nonces.values()) == list(range(7, 67))  # from the chain's pending nonce 7
    state = await wallet.state()
    assert state.runs > 3, state.runs  # continued-as-new several times
    print(f"\n60 reservations over {state.runs} runs, nonces 7..66")
    assert state.next_nonce == 67
    # Idempotent by payment id, across runs: the same nonce, never a new one.
    again = await asyncio.gather(*(wallet.reserve(pid) for pid in ids[:10]))
    assert [r.nonce for r in again] == [nonces[pid] for pid in ids[:10]]
    assert not any(r.new for r in again)
    state = await wallet.state()
    # Open reservations stay in full; final ones only in the bounded index.
    book = {pid: r.nonce for pid, r in state.reservations.items()}
    book.update({pid: r.nonce for pid, r in state.recent.items()})
    assert book == nonces
    assert state.recent["p0"].status is ReservationStatus.CONFIRMED
    assert state.reservations["p5"].status is ReservationStatus.RESERVED
    # The last run's history replays against the code (determinism).
    history = await wallet.handle.fetch_history()
    await Replayer(workflows=[HotWalletWorkflow], data_converter=DATA_CONVERTER).replay_workflow(
        history
    )


async def test_pause_resume_and_in_flight_limit(
    can_env: WorkflowEnvironment, wallet: Wallet
) -> None:
    wallet.params = params(in_flight_limit=2)
    first = await wallet.reserve("a")
    await wallet.reserve("b")
    with pytest.raises(WorkflowUpdateFailedError) as full:
        await wallet.reserve("c")
    assert _error_type(full.value) == ERR_IN_FLIGHT_LIMIT
    await wallet.settle("a", first.nonce)
    third = await wallet.reserve("c")
    assert third.nonce == first.nonce + 2

    await wallet.handle.execute_update(HotWalletWorkflow.pause, "incident 42")
    await wallet.settle("c", third.nonce)
    with pytest.raises(WorkflowUpdateFailedError) as paused:
        await wallet.reserve("d")
    assert _error_type(paused.value) == ERR_PAUSED
    assert (await wallet.reserve("b")).nonce == first.nonce + 1  # known ids still answered
    state = await wallet.state()
    assert state.paused and state.pause_reason == "incident 42"
    await wallet.handle.execute_update(HotWalletWorkflow.resume)
    assert (await wallet.reserve("d")).nonce == first.nonce + 3


async def test_daily_cap(wallet: Wallet) -> None:
    await wallet.reserve("x", amount=60, cap=100)
    with pytest.raises(WorkflowUpdateFailedError) as capped:
        await wallet.reserve("y", amount=50, cap=100)
    assert "daily cap" in str(capped.value.cause)
    assert (await wallet.reserve("z", amount=40, cap=100)).nonce == 8


async def test_released_and_abandoned_nonces_are_filled(
    wallet: Wallet, fake_chain: FakeChain
) -> None:
    wallet.params = params(reservation_timeout_seconds=0.5)
    released = await wallet.reserve("cancelled")
    await wallet.handle.signal(
        HotWalletWorkflow.release, ReleaseSignal(payment_id="cancelled", reason="cancelled")
    )
    fake_chain.closed.add("payment-dead")
    dead = await wallet.reserve("dead")  # its workflow is closed: abandoned after the timeout
    alive = await wallet.reserve("alive")  # still running: kept
    # Broadcast, then its workflow was terminated without reporting: filled (or found used).
    orphan = await wallet.reserve("orphan")
    await wallet.handle.signal(
        HotWalletWorkflow.tx_broadcast,
        TxBroadcastSignal(payment_id="orphan", nonce=orphan.nonce, tx_hash="0x" + "cd" * 32),
    )
    fake_chain.closed.add("payment-orphan")

    async def both_filled() -> HotWalletState | None:
        state = await wallet.state()
        done = all(
            p in state.recent and state.recent[p].status is ReservationStatus.FILLED
            for p in ("cancelled", "dead", "orphan")
        )
        return state if done else None

    state = await wait_for(both_filled, "both fills")
    assert state.reservations["alive"].status is ReservationStatus.RESERVED
    for nonce in (released.nonce, dead.nonce):  # filled by NonceFill children with known ids
        await wallet.client.get_workflow_handle(f"{wallet.id}-fill-{nonce}").describe()
    assert alive.nonce == dead.nonce + 1
    assert state.recent["orphan"].tx_hashes[0] == "0x" + "cd" * 32
    assert any("unresolved" in line for line in state.attention)
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await wallet.reserve("cancelled")
    assert _error_type(again.value) == ERR_RELEASED


async def test_reconcile_skips_ahead_when_the_chain_is_ahead(
    wallet: Wallet, fake_chain: FakeChain
) -> None:
    await wallet.reserve("one")
    fake_chain.nonces = WalletNonces(latest=100, pending=100)
    summary = await wallet.handle.execute_update("reconcile", result_type=WalletSummary)
    assert summary.next_nonce == 100
    assert any("ahead" in line for line in summary.attention)
    assert (await wallet.reserve("two")).nonce == 100


async def test_a_chain_behind_us_never_lowers_the_nonce(
    wallet: Wallet, fake_chain: FakeChain
) -> None:
    """A lagging node (or a reset chain) with nothing open: flagged for a person, never
    followed down; only the operator's set_nonce (with a reason) lowers it."""
    first = await wallet.reserve("one")
    await wallet.settle("one", first.nonce)
    fake_chain.nonces = WalletNonces(latest=0, pending=0)
    summary = await wallet.handle.execute_update("reconcile", result_type=WalletSummary)
    assert summary.next_nonce == first.nonce + 1
    assert summary.nonce_behind == WalletNonces(latest=0, pending=0)
    assert any("NOT lowering" in line for line in summary.attention)
    assert (await wallet.reserve("two")).nonce == first.nonce + 1  # never a used nonce
    # Lowering below an open nonce is refused; with nothing open it takes a reason.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await wallet.handle.execute_update(
            HotWalletWorkflow.set_nonce, SetNonceRequest(nonce=0, reason="chain was reset")
        )
    assert "still open" in str(refused.value.cause)
    await wallet.settle("two", first.nonce + 1)
    summary = await wallet.handle.execute_update(
        HotWalletWorkflow.set_nonce, SetNonceRequest(nonce=0, reason="chain was reset")
    )
    assert summary.next_nonce == 0 and summary.nonce_behind is None
    assert any("by an operator: chain was reset" in line for line in summary.attention)
    assert (await wallet.reserve("three")).nonce == 0
    history = await wallet.handle.fetch_history()
    assert len(history.to_json()) < 200_000  # operator updates wrote summaries, not the state


async def test_cli_wallet_status_and_set_nonce(
    wallet: Wallet, fake_chain: FakeChain, can_env: WorkflowEnvironment
) -> None:
    """`offramp wallet status` shows a chain behind us; `offramp wallet set-nonce` lowers it
    (a reason required), as an operator runs them (subprocesses)."""
    first = await wallet.reserve("one")
    await wallet.settle("one", first.nonce)
    fake_chain.nonces = WalletNonces(latest=0, pending=0)
    await wallet.handle.execute_update("reconcile", result_type=WalletSummary)
    env = {**base_env(), **temporal_env(can_env)}

    async def offramp(*args: str) -> CliResult:
        return await run_command([sys.executable, "-m", "offramp", "wallet", *args], env, 60)

    status = await offramp("status", wallet.id)
    assert status.code == 0, status.err
    assert f"next nonce {first.nonce + 1}" in status.out and "behind ours" in status.out
    no_reason = await offramp("set-nonce", wallet.id, "--nonce", "0", "--reason", "")
    assert no_reason.code == 1 and "reason" in no_reason.error_line
    done = await offramp("set-nonce", wallet.id, "--nonce", "0", "--reason", "chain was reset")
    assert done.code == 0, done.err
    assert "next nonce 0" in done.out and "chain was reset" in done.out
    assert (await wallet.reserve("two")).nonce == 0
