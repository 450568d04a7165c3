"""The benchmark run: the stack up, the chosen scenarios one after another, the table, the stack
down (also on Ctrl-C, SIGTERM or any error)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from offramp.bench.common import Bench
from offramp.bench.figures import Row
from offramp.bench.orders import run_orders
from offramp.bench.payments import run_pools, run_soak
from offramp.bench.settle import run_settle
from offramp.bench.skeleton_run import run_skeleton
from offramp.bench.stack import BenchSettings, BenchStack
from offramp.bench.webhooks import run_webhooks
from offramp.converter import DATA_CONVERTER


@dataclass(frozen=True)
class BenchPlan:
    orders: int = 50  # concurrent orders end to end (0: skip), and as many skeleton workflows
    workers: int = 1  # worker replicas for the orders and the skeleton
    order_wallets: int = 1  # hot wallets the orders pay from
    pools: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    payments: int = 50  # payments per pool size (0: skip)
    kill_orders: int = 0  # orders of the server-kill run (0: skip)
    down_seconds: float = 20.0
    soak: int = 0  # payments of the soak through one wallet (0: skip)
    soak_in_flight: int = 200  # the soak's payments open at a time (0: all at once)
    timeout: float | None = None  # per scenario, s (None: 300 + 3 per workflow); then "stuck"
    block_time: float = 1.0
    confirmations: int = 1
    webhooks_rate: int = 0  # signed webhooks per second into a receiver (0: skip)
    webhooks_seconds: float = 60.0
    settle: int = 0  # orders of the settled → done scenario with webhooks (0: skip)


def quiet_runtime() -> Runtime:
    """The client's own retry warnings would flood the output while the server is down on
    purpose: errors only (the retries themselves are bounded in `tracking.retrying`)."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


async def run_plan(
    stack: BenchStack, plan: BenchPlan, log: Callable[[str], None], rows: list[Row]
) -> None:
    """Run the plan's scenarios, appending each one's row to `rows` as soon as it ends (an
    interrupted run still shows what it measured)."""
    client = await Client.connect(
        stack.info.temporal_address,
        namespace="default",
        data_converter=DATA_CONVERTER,
        runtime=quiet_runtime(),
    )
    bench = Bench(stack, client, plan.timeout, log)
    if plan.orders:
        row, counts = await run_orders(
            bench, plan.orders, replicas=plan.workers, wallets=plan.order_wallets
        )
        rows.append(row)
        rows.append(await run_skeleton(bench, plan.orders, counts, plan.workers))
    if plan.payments:
        await run_pools(bench, plan.payments, plan.pools, rows)
    if plan.kill_orders:
        row, _ = await run_orders(
            bench,
            plan.kill_orders,
            replicas=plan.workers,
            wallets=plan.order_wallets,
            kill_server=True,
            down_seconds=plan.down_seconds,
        )
        rows.append(row)
    if plan.soak:
        rows.append(await run_soak(bench, plan.soak, plan.soak_in_flight))
    if plan.settle:
        rows.append(await run_settle(bench, plan.settle, plan.workers))
    if plan.webhooks_rate:
        rows.append(await run_webhooks(bench, plan.webhooks_rate, plan.webhooks_seconds))
    stack.stop_workers()


def make_stack(plan: BenchPlan, data_dir: Path | None) -> tuple[BenchStack, Path, bool]:
    """The stack in `data_dir`, or in a fresh temporary directory (removed after a clean run)."""
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="offramp-bench-")) if data_dir is None else data_dir
    settings = BenchSettings(
        data_dir=directory.resolve(),
        block_time=plan.block_time,
        confirmations=plan.confirmations,
    )
    return BenchStack(settings), directory, temporary


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
