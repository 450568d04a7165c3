"""Record a HotWallet run that took the `hot-wallet-carry-answers` patch: a steady stream of
stand-in payments that each ask twice, one nonce in flight at a time, and a server that suggests
continue-as-new early, so the entity continues-as-new while answers may be owed. Keeps the first
run (the patch marker, then continue-as-new) and a continued run (one whose input carried answers
when timing made one).

    .venv/bin/python -m tests.histories.payments.record_stream
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from offramp.chain.models import (
    HotWalletInput,
    NonceAnswer,
    NonceRequestInput,
    NonceSettledSignal,
    ReservationStatus,
)
from offramp.converter import DATA_CONVERTER
from tests.dev_server import dev_server
from tests.workflows.test_hot_wallet_can import ask, stand_in_worker


@workflow.defn(name="AskingTwicePayment", sandboxed=False)
class AskingTwicePayment:
    """Asks for its nonce, then again (a re-run's idempotent ask: answered at once from the
    book, so answers are owed at any moment), holds it a while and reports it confirmed."""

    def __init__(self) -> None:
        self.answers: list[NonceAnswer] = []

    @workflow.signal
    def nonce_answer(self, answer: NonceAnswer) -> None:
        self.answers.append(answer)

    @workflow.run
    async def run(self, ask: NonceRequestInput) -> int:
        for asked in (1, 2):
            await workflow.execute_activity(
                "request_nonce", ask, start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda n=asked: len(self.answers) >= n)  # type: ignore[misc]
        nonce = self.answers[0].nonce
        assert nonce is not None and all(a.nonce == nonce for a in self.answers)
        await workflow.sleep(0.3)
        await workflow.get_external_workflow_handle(ask.wallet_workflow_id).signal(
            "nonce_settled",
            NonceSettledSignal(
                payment_id=ask.request.payment_id,
                nonce=nonce,
                status=ReservationStatus.CONFIRMED,
                tx_hash="0x" + f"{nonce:064x}",
            ),
        )
        return nonce


HISTORIES_DIR = Path(__file__).parent
PATCH = "hot-wallet-carry-answers"
SUGGEST_CONTINUE_AS_NEW_AFTER = 300


def carried_answers(history: WorkflowHistory) -> int:
    started = history.events[0].workflow_execution_started_event_attributes
    (inp,) = DATA_CONVERTER.payload_converter.from_payloads(
        list(started.input.payloads), [HotWalletInput]
    )
    return len(inp.state.answers) if inp.state is not None else 0


async def wallet_runs(client: Client, wallet_id: str) -> list[WorkflowHistory]:
    """Every run of the entity, oldest first."""
    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{wallet_id}'")]
    runs.sort(key=lambda wf: wf.start_time)
    return [
        await client.get_workflow_handle(wallet_id, run_id=wf.run_id).fetch_history() for wf in runs
    ]


async def record() -> None:
    # The server suggests continue-as-new early (recorded in the history, so replay sees it):
    # the module's own budgets and limits stay at their defaults, which replay runs with.
    early_can = {"limit.historyCount.suggestContinueAsNew": SUGGEST_CONTINUE_AS_NEW_AFTER}
    async with dev_server(early_can) as env:
        client, task_queue = env.client, f"stream-{uuid.uuid4()}"
        wallet_id = f"hot-wallet-stream-{uuid.uuid4().hex[:8]}"
        async with stand_in_worker(client, task_queue, AskingTwicePayment):
            handles = [
                await client.start_workflow(
                    AskingTwicePayment.run,
                    ask(wallet_id, f"r{i}", in_flight_limit=1),
                    id=f"standin-r{i}",
                    task_queue=task_queue,
                )
                for i in range(30)
            ]
            await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 300)
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(wallet_id).terminate("recorded")
        runs = await wallet_runs(client, wallet_id)
    # A continued run whose input carried answers if there is one (timing decides), else the
    # second run.
    first = runs[0]
    carried = next((r for r in runs[1:] if carried_answers(r) > 0), runs[1] if runs[1:] else None)
    markers = [e for e in first.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    if not any(PATCH.encode() in e.SerializeToString() for e in markers) or carried is None:
        raise SystemExit(f"no run took {PATCH} and continued as new: record again")
    for name, history in (("hot_wallet_carry_answers", first), ("hot_wallet_carried", carried)):
        path = HISTORIES_DIR / f"{name}.json"
        path.write_text(history.to_json() + "\n")
        print(f"{name}: {len(history.events)} events, {carried_answers(history)} answers carried")


if __name__ == "__main__":
    asyncio.run(record())
