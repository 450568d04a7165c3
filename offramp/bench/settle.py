"""Settled at the provider → order workflow done, with webhooks: N orders whose simulator orders
send their webhooks to a receiver, and whose own polls are minutes apart, so a webhook is what
ends each wait. Per order: the workflow's close time minus the moment the simulator moved the
order to SETTLED (one machine, one clock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from statistics import median

from offramp.bench.common import Bench, bounded
from offramp.bench.figures import Row
from offramp.bench.orders import BenchOrder, run_batch
from offramp.bench.stats import latencies, percentile
from offramp.bench.webhooks import pending_wakes, receiver
from offramp.orders.models import workflow_id_for
from offramp.simulator.admin import SimulatorAdmin

# The simulator settles this long after the deposit confirmed: the order follows its own
# confirmed payment by then, so the figure is the webhook path's, not the payment's.
SETTLE_AFTER_SECONDS = 8.0
# Every poll of the order's waits at most this often: far beyond the latency being measured.
POLL_GAP = timedelta(minutes=10)


async def settled_times(bench: Bench, orders: list[BenchOrder]) -> dict[str, datetime]:
    """When the simulator moved each order to SETTLED (orders it did not settle are left out)."""
    async with SimulatorAdmin(bench.stack.simulator_url, timeout_seconds=60) as admin:

        def read(order_id: str) -> Callable[[], Awaitable[tuple[str, str | None]]]:
            async def call() -> tuple[str, str | None]:
                view = await admin.order(order_id)
                return order_id, view.state.get("settled_at")

            return call

        found = await bounded(read(o.order_id) for o in orders)
    return {order_id: datetime.fromisoformat(at) for order_id, at in found if at is not None}


async def provider_calls(bench: Bench, orders: list[BenchOrder]) -> float:
    """Median public status requests per order (every fetch and poll the engine made)."""
    async with SimulatorAdmin(bench.stack.simulator_url, timeout_seconds=60) as admin:
        by_order: dict[str, int] = (await admin.stats())["by_order"]
    return median(by_order.get(o.order_id, 0) for o in orders) if orders else 0.0


async def run_settle(bench: Bench, count: int, replicas: int = 1) -> Row:
    workers = f"{replicas} worker{'s' if replicas > 1 else ''}"
    name = f"settled → done, webhooks ({workers}, 1 wallet)"
    with receiver(bench) as running:
        batch = await run_batch(
            bench,
            name,
            count,
            label=f"settle{count}",
            replicas=replicas,
            order_fields={
                "webhook_url": running.route("kado"),
                "settlement_delay_seconds": SETTLE_AFTER_SECONDS,
            },
            input_options={
                "webhooks": True,
                "poll_initial_interval": POLL_GAP,
                "poll_max_interval": POLL_GAP,
                "safety_poll_interval": POLL_GAP,
            },
        )
        health = await pending_wakes(running.url, bench.log)
    row = batch.row
    settled = await settled_times(bench, batch.orders)
    closes = {c.workflow_id: c.close for c in batch.closed}
    lags = [
        (closes[workflow_id_for(order_id)] - at).total_seconds()
        for order_id, at in settled.items()
        if workflow_id_for(order_id) in closes
    ]
    row.latency = latencies(lags)
    ms = {p: percentile(lags, p / 100) * 1000 for p in (50, 95, 99)}
    longest = max(lags, default=0) * 1000
    row.notes.append(
        f"settled at the provider → workflow closed, over {len(lags)} orders (ms): "
        f"p50 {ms[50]:.0f}, p95 {ms[95]:.0f}, p99 {ms[99]:.0f}, max {longest:.0f} "
        "(the table's latency columns are these, in s)"
    )
    calls = await provider_calls(bench, batch.orders)
    row.notes.append(
        f"provider status requests per order (median): {calls:g}; receiver: wakes "
        f"{health['wakes']}, requests {health['requests']}"
    )
    return row
