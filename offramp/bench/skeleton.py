"""The bare Temporal skeleton: the ceiling the real order is compared with.

A parent with as many no-op activities as a real order, then a child with as many as a real payment
(both counted from a real history in the same benchmark run). No I/O: this is what Temporal, the
dev server and one worker process can do with that shape, and nothing more.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

SKELETON_ORDER = "BenchSkeletonOrder"
SKELETON_PAYMENT = "BenchSkeletonPayment"
_TIMEOUT = timedelta(seconds=60)


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Does nothing: the activity round trip is what is measured."""


@workflow.defn(name=SKELETON_PAYMENT)
class SkeletonPayment:
    @workflow.run
    async def run(self, activities: int) -> None:
        for _ in range(activities):
            await workflow.execute_activity(noop, start_to_close_timeout=_TIMEOUT)


@workflow.defn(name=SKELETON_ORDER)
class SkeletonOrder:
    @workflow.run
    async def run(self, order_activities: int, payment_activities: int) -> None:
        for _ in range(order_activities):
            await workflow.execute_activity(noop, start_to_close_timeout=_TIMEOUT)
        if payment_activities:
            await workflow.execute_child_workflow(
                SkeletonPayment.run,
                payment_activities,
                id=f"{workflow.info().workflow_id}-payment",
            )
