"""Minimal reproduction attempt: many concurrent update-with-start calls on one entity workflow
while a tiny worker cache forces eviction and replay between workflow tasks.

Run: python repro_update_nde.py [--cache N] [--updates N] [--temporal PATH]
Prints every WorkflowTaskFailed cause found in the entity's history.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


@activity.defn
async def read_counter() -> int:
    return 0


@workflow.defn
class Entity:
    def __init__(self) -> None:
        self.next: int | None = None
        self.open: set[str] = set()
        self.given: dict[str, int] = {}
        self.lock = asyncio.Lock()

    @workflow.update
    async def reserve(self, key: str) -> int:
        await workflow.wait_condition(lambda: self.next is not None)
        async with self.lock:
            if key in self.given:
                return self.given[key]
            assert self.next is not None
            self.given[key] = self.next
            self.open.add(key)
            self.next += 1
            return self.given[key]

    @reserve.validator
    def check(self, key: str) -> None:
        if key not in self.given and len(self.open) >= 16:
            raise ApplicationError("full")

    @workflow.signal
    def done(self, key: str) -> None:
        self.open.discard(key)

    @workflow.run
    async def run(self) -> None:
        self.next = await workflow.execute_activity(
            read_counter, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: False)


@workflow.defn
class Filler:
    """Other workflows competing for the cache (like open payments)."""

    @workflow.signal
    def poke(self) -> None:
        pass

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def one(client: Client, tq: str, wid: str, key: str) -> int:
    while True:
        try:
            value: int = await client.execute_update_with_start_workflow(
                Entity.reserve,
                key,
                start_workflow_operation=WithStartWorkflowOperation(
                    Entity.run,
                    id=wid,
                    task_queue=tq,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                ),
            )
        except (WorkflowUpdateFailedError, RPCError):
            await asyncio.sleep(0.2)
            continue
        await client.get_workflow_handle(wid).signal(Entity.done, key)
        return value


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cache", type=int, default=2)
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--fillers", type=int, default=20)
    p.add_argument("--temporal", default=None)
    a = p.parse_args()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=a.temporal, dev_server_log_level="error"
    )
    tq, wid = f"tq-{uuid.uuid4()}", f"entity-{uuid.uuid4()}"
    try:
        async with Worker(
            env.client,
            task_queue=tq,
            workflows=[Entity, Filler],
            activities=[read_counter],
            max_cached_workflows=a.cache,
        ):
            fillers = [
                await env.client.start_workflow(Filler.run, id=f"f-{uuid.uuid4()}", task_queue=tq)
                for _ in range(a.fillers)
            ]
            stop = asyncio.Event()

            async def churn() -> None:
                while not stop.is_set():
                    await asyncio.gather(*(f.signal(Filler.poke) for f in fillers))
                    await asyncio.sleep(0.05)

            churner = asyncio.create_task(churn())
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(one(env.client, tq, wid, f"k{i}") for i in range(a.updates))),
                    timeout=600,
                )
                print("values contiguous:", sorted(results) == list(range(a.updates)))
            except TimeoutError:
                print("TIMED OUT: updates did not complete (entity jammed?)")
            stop.set()
            await churner
            history = await env.client.get_workflow_handle(wid).fetch_history()
            fails = [
                e
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
            print(f"history events {len(history.events)}, workflow task failures {len(fails)}")
            for e in fails[:5]:
                print(" ", e.workflow_task_failed_event_attributes.failure.message[:300])
            for f in fillers:
                await f.terminate()
            await env.client.get_workflow_handle(wid).terminate()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
