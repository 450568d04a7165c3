"""Record SellOrderWorkflow histories from real runs (dev server, anvil, Kado simulator, worker).

    make histories        # or: .venv/bin/python -m tests.histories.record
    .venv/bin/python -m tests.histories.record --only workflow_cancelled_while_waiting,...

Writes tests/histories/<scenario>.json. Run it in full only when a workflow change is meant to
be incompatible (after the old histories were replayed against patched code in production);
otherwise the committed histories are exactly what the replay test guards: record only the
scenarios a change adds (`--only`), never over the files that guard older runs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from offramp import search_attributes
from offramp.chain.models import PaymentState, payment_workflow_id
from offramp.devstack.chain import (
    DEPLOYER,
    HOT_WALLET,
    HOT_WALLET_KEY,
    _send,
    mint,
    token_contract,
)
from offramp.orders.models import (
    Decision,
    SellOrderResult,
    SellOrderState,
    Stage,
    order_payment_id,
)
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.faults import FaultConfig, MalformedKind
from tests.dev_server import dev_server
from tests.e2e.continuation import run_chain, storm_until_continued, wake_until
from tests.e2e.support import (
    HOUR_POLLS,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    new_order_id,
    sell_chain,
    start_order,
)

HISTORIES_DIR = Path(__file__).resolve().parent
OPERATOR = Decision(operator="recorder@example.com", note="recorded scenario")


@dataclass
class Ctx:
    client: Client
    sc: SellChain
    admin: SimulatorAdmin
    task_queue: str


async def _state(handle: WorkflowHandle[Any, Any]) -> SellOrderState:
    state: SellOrderState = await handle.query("state", result_type=SellOrderState)
    return state


async def _wait_until(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(600):  # bounded: 60 s
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no {what} within 60 s")


async def _wait_stage(handle: WorkflowHandle[Any, Any], stage: Stage) -> None:
    async def reached() -> bool:
        return (await _state(handle)).stage is stage

    await _wait_until(reached, stage.value)


async def token_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, asset="USDC", amount=Decimal("100.25"))
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def native_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, asset="ETH", amount=Decimal("0.0125"))
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def not_ready_then_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=1.0)
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def rejected_unknown_order(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    return await start_order(ctx.client, ctx.task_queue, new_order_id())


async def rejected_buy_order(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, order_type="buy")
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def rejected_over_max_amount(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, amount=Decimal("20"))
    return await start_order(ctx.client, ctx.task_queue, order_id, max_amount=Decimal("19"))


async def rejected_invalid_deposit_address(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, overrides={"depositAddress": "0x1234"})
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def approved(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, amount=Decimal("6000"))
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    await _wait_stage(handle, Stage.AWAITING_APPROVAL)
    await handle.execute_update("approve", OPERATOR, result_type=str)
    return handle


async def cancelled_before_sending(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=3600)
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    await _wait_stage(handle, Stage.AWAITING_ORDER)
    await handle.execute_update("cancel", OPERATOR, result_type=str)
    return handle


async def fee_bump(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, amount=Decimal("42"))
    ctx.sc.chain.set_automine(False)
    try:
        handle = await start_order(ctx.client, ctx.task_queue, order_id)
        payment = ctx.client.get_workflow_handle(payment_workflow_id(f"kado-{order_id}"))

        async def bumped() -> bool:
            try:
                state = await payment.query("state", result_type=PaymentState)
            except RPCError:  # the child is not started yet
                return False
            return len(state.attempts) >= 2

        await _wait_until(bumped, "fee bump")
    finally:
        ctx.sc.chain.set_automine(True)
        ctx.sc.chain.mine()
    return handle


async def provider_failure(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, scenario="provider_failure")
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def unresolved(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, scenario="stuck_unknown")
    return await start_order(
        ctx.client, ctx.task_queue, order_id, settlement_timeout=timedelta(seconds=5)
    )


async def rejected_already_funded(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, overrides={"transferStatus": "pending"})
    return await start_order(ctx.client, ctx.task_queue, order_id)


async def funded_while_waiting(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=3600)
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    await _wait_stage(handle, Stage.AWAITING_ORDER)
    await ctx.admin.patch_order(order_id, overrides={"transferStatus": "pending"})
    return handle


async def workflow_cancelled_during_fetch(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, faults=FaultConfig(error_rate=1.0))
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    await ctx.admin.wait_for(order_id, lambda v: v.requests >= 1, what="a first fetch")
    await handle.cancel()
    return handle


async def workflow_cancelled_while_waiting(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=3600)
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    await _wait_stage(handle, Stage.AWAITING_ORDER)
    await handle.cancel()
    return handle


async def _malformed_once_paying(ctx: Ctx, handle: WorkflowHandle[Any, Any], order_id: str) -> int:
    async def paying() -> bool:
        return (await _state(handle)).stage in {Stage.FUNDING, Stage.CONFIRMING, Stage.TRACKING}

    await _wait_until(paying, "payment")
    faults = FaultConfig(malformed_rate=1.0, malformed_kind=MalformedKind.HTML)
    await ctx.admin.set_order_faults(order_id, faults)
    return await ctx.admin.requests_for(order_id)


async def malformed_after_payment(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(ctx.admin, settlement_delay_seconds=1.0)
    handle = await start_order(ctx.client, ctx.task_queue, order_id)
    before = await _malformed_once_paying(ctx, handle, order_id)
    await ctx.admin.wait_for_phase(order_id, "settled", timeout_seconds=60)
    await ctx.admin.wait_for(order_id, lambda v: v.requests >= before + 6, timeout_seconds=60)
    await ctx.admin.set_order_faults(order_id, None)
    return handle


async def malformed_until_deadline(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    order_id = await create_sim_order(
        ctx.admin, scenario="slow_settlement", slow_settlement_seconds=3600
    )
    handle = await start_order(
        ctx.client, ctx.task_queue, order_id, settlement_timeout=timedelta(seconds=5)
    )
    await _malformed_once_paying(ctx, handle, order_id)
    return handle


Scenario = Callable[[Ctx], Awaitable[WorkflowHandle[Any, SellOrderResult]]]


async def waited_for_funds(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """The hot wallet holds less than the order: the order is flagged "insufficient funds"
    while its payment waits without a nonce, then cleared and paid after the top-up."""
    w3, token = ctx.sc.w3, ctx.sc.token
    held = ctx.sc.chain.token_balance(HOT_WALLET)
    contract = token_contract(w3, token)
    transfer = contract.functions.transfer(DEPLOYER, held - 10**6)  # leave 1 USDC
    _send(w3, HOT_WALLET_KEY, {"to": token, "data": transfer._encode_transaction_data()})
    order_id = await create_sim_order(ctx.admin, asset="USDC", amount=Decimal("25"))
    handle = await start_order(ctx.client, ctx.task_queue, order_id)

    async def flagged() -> bool:
        return (await _state(handle)).needs_attention

    await _wait_until(flagged, "attention for insufficient funds")
    mint(w3, token, HOT_WALLET, held)  # the top-up (and back to the earlier balance after)
    return handle


async def combined_upserts_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """A happy order under combined-upserts: one upsert command per workflow task."""
    return await token_happy(ctx)


async def sparse_upserts_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """A happy order under sparse-upserts: upserts at FUNDING, TRACKING and SETTLED only."""
    return await token_happy(ctx)


async def sparse_upserts_not_ready(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """Under sparse-upserts an order waiting for the provider shows AWAITING_ORDER at once."""
    return await not_ready_then_happy(ctx)


async def quiet_progress_happy(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """A happy order whose payment sends it no progress (quiet-progress) and whose tracking
    waits once (`until_final`); its payment child is recorded too."""
    return await token_happy(ctx)


async def continued_as_new(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """order-continue-as-new: wake storms with a 150-event budget, while waiting for the order
    (the next run starts over) and after its payment (the next run goes on following)."""
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=3600)
    handle = await start_order(
        ctx.client,
        ctx.task_queue,
        order_id,
        history_budget=150,
        **HOUR_POLLS,
    )
    await _wait_stage(handle, Stage.AWAITING_ORDER)
    await storm_until_continued(handle)
    await ctx.admin.patch_order(order_id, ready_after_seconds=0, settlement_delay_seconds=3600)
    await wake_until(handle, lambda state: state.stage is Stage.TRACKING)
    await storm_until_continued(handle)
    settled = {
        "transferStatus": "settled",
        "providerDisbursementStatus": "completed",
        "machineStatusField": "SETTLED",
    }
    await ctx.admin.patch_order(order_id, overrides=settled)
    await wake_until(handle, lambda state: state.stage.is_terminal)
    return handle


async def poll_now_storm(ctx: Ctx) -> WorkflowHandle[Any, SellOrderResult]:
    """poll_now storms while waiting with hour-long polls: wakes inside the 2 s gap are
    deferred to its end (deferred-poll-now timers); then wakes carry it to settled."""
    order_id = await create_sim_order(ctx.admin, ready_after_seconds=3600)
    handle = await start_order(
        ctx.client,
        ctx.task_queue,
        order_id,
        **HOUR_POLLS,
    )
    await _wait_stage(handle, Stage.AWAITING_ORDER)
    await asyncio.gather(*(handle.signal("poll_now") for _ in range(30)))
    await ctx.admin.patch_order(order_id, ready_after_seconds=0)

    async def settled() -> bool:
        if (await _state(handle)).stage is Stage.SETTLED:
            return True
        await asyncio.gather(*(handle.signal("poll_now") for _ in range(5)))
        await asyncio.sleep(2.5)
        return False

    await _wait_until(settled, "settled by wakes")
    return handle


SCENARIOS: dict[str, tuple[Scenario, Stage]] = {
    "token_happy": (token_happy, Stage.SETTLED),
    "native_happy": (native_happy, Stage.SETTLED),
    "not_ready_then_happy": (not_ready_then_happy, Stage.SETTLED),
    "rejected_unknown_order": (rejected_unknown_order, Stage.REJECTED),
    "rejected_buy_order": (rejected_buy_order, Stage.REJECTED),
    "rejected_over_max_amount": (rejected_over_max_amount, Stage.REJECTED),
    "rejected_invalid_deposit_address": (rejected_invalid_deposit_address, Stage.REJECTED),
    "approved": (approved, Stage.SETTLED),
    "cancelled_before_sending": (cancelled_before_sending, Stage.CANCELLED),
    "fee_bump": (fee_bump, Stage.SETTLED),
    "provider_failure": (provider_failure, Stage.PROVIDER_FAILED),
    "unresolved": (unresolved, Stage.UNRESOLVED),
    # Issue 11: refusals of a funded order, workflow cancels, malformed answers after payment.
    "rejected_already_funded": (rejected_already_funded, Stage.REJECTED),
    "funded_while_waiting": (funded_while_waiting, Stage.REJECTED),
    "workflow_cancelled_during_fetch": (workflow_cancelled_during_fetch, Stage.CANCELLED),
    "workflow_cancelled_while_waiting": (workflow_cancelled_while_waiting, Stage.CANCELLED),
    "malformed_after_payment": (malformed_after_payment, Stage.SETTLED),
    "malformed_until_deadline": (malformed_until_deadline, Stage.UNRESOLVED),
    "waited_for_funds": (waited_for_funds, Stage.SETTLED),
    # Issue 9 (cost): combined upserts; poll_now inside the gap deferred, not dropped.
    "combined_upserts_happy": (combined_upserts_happy, Stage.SETTLED),
    "poll_now_storm": (poll_now_storm, Stage.SETTLED),
    # Issue 9 (cost): search attributes only for what a list filter needs at once.
    "sparse_upserts_happy": (sparse_upserts_happy, Stage.SETTLED),
    "sparse_upserts_not_ready": (sparse_upserts_not_ready, Stage.SETTLED),
    "quiet_progress_happy": (quiet_progress_happy, Stage.SETTLED),
    # Every run is written (<name>_run<N>.json), each continue-as-new to the next.
    "continued_as_new": (continued_as_new, Stage.SETTLED),
}
# Scenarios whose payment child is recorded too (tests/histories/payments/<name>.json).
CHILD_HISTORIES: dict[str, str] = {"quiet_progress_happy": "payment_quiet_progress"}


async def record(out_dir: Path = HISTORIES_DIR, only: set[str] | None = None) -> list[Path]:
    unknown = (only or set()) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    written = []
    async with dev_server(search_attributes=search_attributes.ALL) as env:
        with tempfile.TemporaryDirectory() as tmp, sell_chain(Path(tmp)) as sc:
            task_queue = f"record-{uuid.uuid4()}"
            settings = engine_settings(
                sc, task_queue, bump_after_seconds=1.0, funds_recheck_seconds=1.0
            )
            async with (
                SimulatorAdmin(sc.simulator_url) as admin,
                engine_worker(env.client, settings),
            ):
                ctx = Ctx(env.client, sc, admin, task_queue)
                for name, (scenario, expected) in SCENARIOS.items():
                    if only is not None and name not in only:
                        continue
                    handle = await scenario(ctx)
                    result = await handle.result()
                    if result.outcome is not expected:
                        raise SystemExit(f"{name}: ended {result.outcome}, expected {expected}")
                    first_run = handle.first_execution_run_id or handle.run_id or ""
                    runs = await run_chain(ctx.client, handle.id, first_run)
                    for number, history in enumerate(runs, start=1):
                        stem = name if len(runs) == 1 else f"{name}_run{number}"
                        path = out_dir / f"{stem}.json"
                        path.write_text(history.to_json() + "\n")
                        written.append(path)
                        print(f"{stem}: {result.outcome.value}, {len(history.events)} events")
                    if name in CHILD_HISTORIES:
                        payment_id = order_payment_id("kado", result.order_id)
                        child = env.client.get_workflow_handle(payment_workflow_id(payment_id))
                        path = out_dir / "payments" / f"{CHILD_HISTORIES[name]}.json"
                        path.write_text((await child.fetch_history()).to_json() + "\n")
                        written.append(path)
                        print(f"{CHILD_HISTORIES[name]}: the payment child")
    return written


def _only(argv: list[str]) -> set[str] | None:
    if len(argv) == 2 and argv[0] == "--only":
        return {name for name in argv[1].split(",") if name}
    if argv:
        raise SystemExit("usage: python -m tests.histories.record [--only name,name,...]")
    return None


if __name__ == "__main__":
    asyncio.run(record(only=_only(sys.argv[1:])))
    sys.exit(0)
