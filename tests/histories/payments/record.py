"""Record Payment, NonceFill and HotWallet histories from real runs (dev server, anvil, worker).

    make histories        # or: .venv/bin/python -m tests.histories.payments.record [scenario ...]

Writes tests/histories/payments/<scenario>.json. The dev server suggests continue-as-new early,
so the hot-wallet entity continues-as-new during the recording; its first run (several nonces
handed out, one filled, ending in continue-as-new) is kept. These histories guard deploys of the
payment workflows: changed code must still replay them (see test_replay.py next to this file).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHistory
from temporalio.common import WorkflowIDConflictPolicy

from activities.chain import tuning_of
from offramp.chain.models import (
    HotWalletInput,
    HotWalletParams,
    HotWalletState,
    PaymentOutcome,
    PaymentState,
    PaymentStatus,
    ReservationStatus,
    ReserveRequest,
    ReserveResult,
    hot_wallet_workflow_id,
    nonce_fill_workflow_id,
    payment_workflow_id,
)
from offramp.devstack.chain import HOT_WALLET
from tests.chain.dropper import Dropper
from tests.chain.support import (
    CHAIN,
    PayChain,
    history_holds_key,
    pay_chain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)
from tests.dev_server import dev_server

HISTORIES_DIR = Path(__file__).resolve().parent
TASK_QUEUE = "record-payments"
WALLET_SUFFIX = "record"
# Small enough that the entity continues-as-new during the recording, large enough that its first
# run holds several reservations and the nonce fill.
SUGGEST_CONTINUE_AS_NEW_AFTER = 70


@dataclass
class Ctx:
    client: Client
    chain: PayChain

    @property
    def wallet_id(self) -> str:
        return hot_wallet_workflow_id(self.chain.chain_id, HOT_WALLET, WALLET_SUFFIX)

    @asynccontextmanager
    async def worker(self, **config: Any) -> AsyncIterator[None]:
        # Every worker shares the entity's settings (its params are fixed by the first reserve).
        settings: dict[str, Any] = {
            "reservation_timeout_seconds": 1.0,
            "wallet_entity_suffix": WALLET_SUFFIX,
            **config,
        }
        async with payment_worker(self.client, TASK_QUEUE, {CHAIN: self.chain.config(**settings)}):
            yield

    async def pay(self, payment_id: str, asset: str, amount: str) -> Any:
        return await start_payment(
            self.client,
            TASK_QUEUE,
            payment_request(payment_id, Account.create().address, asset, amount),
        )


async def _finish(handle: Any, expected: PaymentStatus) -> str:
    outcome: PaymentOutcome = await handle.result()
    if outcome.status is not expected:
        raise SystemExit(f"{handle.id}: {outcome.status}, expected {expected}")
    return str(handle.id)


async def token_happy(ctx: Ctx) -> list[str]:
    async with ctx.worker():
        return [
            await _finish(await ctx.pay("token_happy", "USDC", "12.5"), PaymentStatus.CONFIRMED)
        ]


async def native_happy(ctx: Ctx) -> list[str]:
    async with ctx.worker():
        handle = await ctx.pay("native_happy", "ETH", "0.0125")
        return [await _finish(handle, PaymentStatus.CONFIRMED)]


async def nonce_fill(ctx: Ctx) -> list[str]:
    """A nonce reserved by a payment that never ran is abandoned and filled (NonceFill)."""
    config = ctx.chain.config(reservation_timeout_seconds=1.0, wallet_entity_suffix=WALLET_SUFFIX)
    async with ctx.worker():
        ghost: ReserveResult = await ctx.client.execute_update_with_start_workflow(
            "reserve",
            ReserveRequest(
                payment_id="ghost",
                asset="USDC",
                amount_base_units=1,
                daily_cap_base_units=10**12,
                payment_workflow_id=payment_workflow_id("ghost-never-started"),
            ),
            start_workflow_operation=WithStartWorkflowOperation(
                "HotWallet",
                HotWalletInput(
                    params=HotWalletParams(
                        chain=CHAIN,
                        chain_id=ctx.chain.chain_id,
                        address=HOT_WALLET,
                        tuning=tuning_of(config),
                    )
                ),
                id=ctx.wallet_id,
                task_queue=TASK_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            ),
            result_type=ReserveResult,
        )
        wallet = ctx.client.get_workflow_handle(ctx.wallet_id)

        async def filled() -> str | None:
            state = await wallet.query("state", result_type=HotWalletState)
            open_ = state.reservations.get("ghost")
            if open_ is not None:  # still open: not filled yet
                return None
            final = state.recent.get("ghost")  # a final reservation leaves the open set
            if final is None or final.status is not ReservationStatus.FILLED:
                return None
            return nonce_fill_workflow_id(ctx.wallet_id, final.nonce)

        fill_id = await wait_for(filled, f"the fill of nonce {ghost.nonce}", limit=120)
        await ctx.client.get_workflow_handle(fill_id).result()
        return [fill_id]


async def rejected_preflight(ctx: Ctx) -> list[str]:
    async with ctx.worker():
        handle = await ctx.pay("rejected_preflight", "DOGE", "1")
        return [await _finish(handle, PaymentStatus.REJECTED)]


async def fee_bumped(ctx: Ctx) -> list[str]:
    ctx.chain.set_automine(False)
    try:
        async with ctx.worker(bump_after_seconds=0.5):
            handle = await ctx.pay("fee_bumped", "USDC", "7")

            async def bumped() -> PaymentState | None:
                state = await payment_state(handle)
                return state if len(state.attempts) >= 2 else None

            await wait_for(bumped, "a fee bump", limit=120)
            ctx.chain.set_automine(True)
            ctx.chain.mine()
            return [await _finish(handle, PaymentStatus.CONFIRMED)]
    finally:
        ctx.chain.set_automine(True)


async def dropped_rebroadcast(ctx: Ctx) -> list[str]:
    ctx.chain.set_automine(False)
    try:
        async with ctx.worker(bump_after_seconds=600):
            handle = await ctx.pay("dropped_rebroadcast", "ETH", "0.02")

            async def sent() -> str | None:
                state = await payment_state(handle)
                return state.attempts[0].tx_hash if state.attempts else None

            tx_hash = await wait_for(sent, "the broadcast", limit=120)
            ctx.chain.rpc("anvil_dropTransaction", [tx_hash])

            async def rebroadcast() -> bool:
                state = await payment_state(handle)
                return state.attempts[0].broadcasts >= 2 and ctx.chain.tx_known(tx_hash)

            await wait_for(rebroadcast, "the re-broadcast", limit=120)
            ctx.chain.set_automine(True)
            ctx.chain.mine()
            return [await _finish(handle, PaymentStatus.CONFIRMED)]
    finally:
        ctx.chain.set_automine(True)


async def dropped_past_bound(ctx: Ctx) -> list[str]:
    """A node that drops the tx over and over: past the bound the payment flags a person and waits
    in one activity that re-sends the same bytes (workflows/payment.py MAX_SEND_ROUNDS)."""
    ctx.chain.set_automine(False)
    try:
        async with ctx.worker(bump_after_seconds=600):
            handle = await ctx.pay("dropped_past_bound", "ETH", "0.03")
            dropper = Dropper(ctx.chain, handle)
            dropping = asyncio.create_task(dropper.run())
            try:

                async def flagged() -> bool:
                    return (await payment_state(handle)).needs_attention

                await wait_for(flagged, "the bound on re-broadcasts", limit=300)
                drops = dropper.drops

                async def resent() -> bool:
                    return dropper.drops > drops

                await wait_for(resent, "a re-send by the waiting activity", limit=120)
            finally:
                dropping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dropping
            ctx.chain.set_automine(True)
            ctx.chain.mine()
            return [await _finish(handle, PaymentStatus.CONFIRMED)]
    finally:
        ctx.chain.set_automine(True)


Scenario = Callable[[Ctx], Awaitable[list[str]]]
SCENARIOS: dict[str, Scenario] = {
    "payment_token_happy": token_happy,
    "payment_native_happy": native_happy,
    "nonce_fill": nonce_fill,
    "payment_rejected_preflight": rejected_preflight,
    "payment_fee_bumped": fee_bumped,
    "payment_dropped_rebroadcast": dropped_rebroadcast,
    "payment_dropped_past_bound": dropped_past_bound,
}


def _count(history: WorkflowHistory, kind: EventType.ValueType) -> int:
    return sum(1 for e in history.events if e.event_type == kind)


async def _wallet_runs(ctx: Ctx) -> tuple[WorkflowHistory, WorkflowHistory]:
    """The entity's first run (it must have handed out nonces, filled one and continued-as-new)
    and the run it continued as (started from the carried state)."""
    latest = await ctx.client.get_workflow_handle(ctx.wallet_id).describe()
    first = ctx.client.get_workflow_handle(
        ctx.wallet_id, run_id=latest.raw_description.workflow_execution_info.first_run_id
    )
    history = await first.fetch_history()
    accepted = _count(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    fills = _count(history, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
    last = history.events[-1].event_type
    if (
        accepted < 3
        or fills < 1
        or last != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ):
        raise SystemExit(
            f"hot wallet first run: {len(history.events)} events, {accepted} reserves, "
            f"{fills} fills, last event {last}: adjust SUGGEST_CONTINUE_AS_NEW_AFTER"
        )
    attrs = history.events[-1].workflow_execution_continued_as_new_event_attributes
    second = ctx.client.get_workflow_handle(ctx.wallet_id, run_id=attrs.new_execution_run_id)
    return history, await second.fetch_history()


def _write(out_dir: Path, name: str, history: WorkflowHistory) -> Path:
    text = history.to_json()
    if history_holds_key(text):
        raise SystemExit(f"{name}: the private key is in the history")
    path = out_dir / f"{name}.json"
    path.write_text(text + "\n")
    print(f"{name}: {history.workflow_id}, {len(history.events)} events")
    return path


async def record(out_dir: Path = HISTORIES_DIR, only: list[str] | None = None) -> list[Path]:
    """Record every scenario and the hot wallet's runs, or only the named scenarios."""
    unknown = set(only or []) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    written = []
    early_can = {"limit.historyCount.suggestContinueAsNew": SUGGEST_CONTINUE_AS_NEW_AFTER}
    async with dev_server(early_can) as env:
        with tempfile.TemporaryDirectory() as tmp, pay_chain(Path(tmp)) as chain:
            ctx = Ctx(env.client, chain)
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                for workflow_id in await scenario(ctx):
                    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                    written.append(_write(out_dir, name, history))
            await env.client.get_workflow_handle(ctx.wallet_id).terminate("recorded")
            if not only:
                first, second = await _wallet_runs(ctx)
                written.append(_write(out_dir, "hot_wallet", first))
                written.append(_write(out_dir, "hot_wallet_continued", second))
    return written


if __name__ == "__main__":
    # `python -m tests.histories.payments.record [scenario ...]`: all, or only the named ones.
    asyncio.run(record(only=sys.argv[1:]))
    sys.exit(0)
