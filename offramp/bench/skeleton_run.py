"""The skeleton ceiling: as many bare workflows as orders, same activity count, same server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from offramp.bench.common import Bench, bounded, wait_and_time
from offramp.bench.figures import Row
from offramp.bench.orders import ActivityCounts
from offramp.bench.skeleton import SKELETON_ORDER, SkeletonOrder

# Counted from a happy order's history on this branch (order workflow, payment child); used when
# the benchmark ran no real order to count from.
DEFAULT_COUNTS = ActivityCounts(order=4, payment=5)


async def run_skeleton(
    bench: Bench, count: int, counts: ActivityCounts | None, replicas: int = 1
) -> Row:
    measured = counts is not None
    shape = counts or DEFAULT_COUNTS
    name = f"skeleton ({replicas} worker{'s' if replicas > 1 else ''})"
    task_queue = f"{bench.stack.task_queue}-skeleton"
    bench.log(f"{name}: {count} workflows, {shape.order}+{shape.payment} activities each")
    bench.stack.start_skeleton_workers(task_queue, replicas)
    since = bench.now()

    def start(i: int) -> Callable[[], Awaitable[Any]]:
        return lambda: bench.client.start_workflow(
            SkeletonOrder.run,
            args=[shape.order, shape.payment],
            id=f"skeleton-{bench.tag}-{replicas}-{i:05d}",
            task_queue=task_queue,
        )

    await bounded(start(i) for i in range(count))
    row, closed = await wait_and_time(bench, name, "workflows/s", SKELETON_ORDER, since, count)
    row.outcomes = Counter(c.status.name for c in closed)
    source = "counted from a real order in this run" if measured else "default, no order ran"
    row.notes.append(f"{shape.order} activities + child with {shape.payment} ({source})")
    bench.stack.stop_workers()
    return row
