"""`offramp bench` (`make bench`): throughput and fault figures on a private local stack.

Prints figures, never asserts timings. Each throughput figure comes with its baseline from the
same run (the bare Temporal skeleton for orders; pool size 1 for pools).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from offramp.cli.app import app, console, fail

if TYPE_CHECKING:
    from offramp.bench.figures import Row


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or any(not 1 <= s <= 8 for s in sizes):
        raise typer.BadParameter(f"pool sizes must be 1..8, got {text!r}")
    return sizes


@app.command()
def bench(
    orders: Annotated[
        int, typer.Option(min=0, max=5000, help="concurrent orders end to end (0: skip)")
    ] = 50,
    workers: Annotated[int, typer.Option(min=1, max=4, help="worker replicas")] = 1,
    order_wallets: Annotated[int, typer.Option(min=1, max=8, help="wallets orders pay from")] = 1,
    pools: Annotated[str, typer.Option(help="wallet pool sizes, comma-separated")] = "1,2,4,8",
    payments: Annotated[
        int, typer.Option(min=0, max=20000, help="payments per pool size (0: skip)")
    ] = 50,
    server_kill: Annotated[
        int, typer.Option(min=0, max=5000, help="orders of the server-kill run (0: skip)")
    ] = 0,
    down_seconds: Annotated[float, typer.Option(min=0, help="server down time per kill")] = 20.0,
    soak: Annotated[
        int, typer.Option(min=0, max=100000, help="payments through one wallet (0: skip)")
    ] = 0,
    soak_in_flight: Annotated[
        int, typer.Option(min=0, max=100000, help="soak payments open at a time (0: all at once)")
    ] = 200,
    webhooks_rate: Annotated[
        int, typer.Option(min=0, max=20000, help="signed webhooks/s into a receiver (0: skip)")
    ] = 0,
    webhooks_seconds: Annotated[
        float, typer.Option(min=1, help="how long the webhooks scenario sends")
    ] = 60.0,
    settle: Annotated[
        int,
        typer.Option(
            min=0, max=5000, help="orders woken by webhooks: settled → done latency (0: skip)"
        ),
    ] = 0,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=10, help="seconds a scenario may take, then open = stuck (default: 300 + 3 per wf)"
        ),
    ] = None,
    block_time: Annotated[float, typer.Option(min=0.1, help="seconds between anvil blocks")] = 1.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="keep SQLite, chain state and logs here (default: temp)")
    ] = None,
) -> None:
    """Run N concurrent orders end to end against the bare Temporal skeleton, payments/s per
    wallet-pool size, and optionally the server-kill run, a soak through one wallet, orders woken
    by webhooks (settled → done latency) and a webhook flood (reply latency p50/p95/p99); print a
    table. Starts and stops its own stack on free
    ports."""
    from offramp.bench.runner import BenchPlan, make_stack, remove, run_plan
    from offramp.devstack.processes import ProcessFailed

    plan = BenchPlan(
        orders=orders,
        workers=workers,
        order_wallets=order_wallets,
        pools=_sizes(pools),
        payments=payments,
        kill_orders=server_kill,
        down_seconds=down_seconds,
        soak=soak,
        soak_in_flight=soak_in_flight,
        webhooks_rate=webhooks_rate,
        webhooks_seconds=webhooks_seconds,
        settle=settle,
        timeout=timeout,
        block_time=block_time,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwinds: the stack is stopped
    stack, directory, temporary = make_stack(plan, data_dir)
    began = time.monotonic()
    rows: list[Row] = []
    error: str | None = None
    try:
        with console.status("starting the benchmark stack..."):
            stack.start()
        console.print(f"stack up in {time.monotonic() - began:.0f} s; logs in {stack.logs}")
        asyncio.run(run_plan(stack, plan, lambda line: console.print(line, highlight=False), rows))
    except KeyboardInterrupt:
        error = "interrupted"
    except ProcessFailed as exc:
        error = f"{str(exc).splitlines()[0]} (logs in {stack.logs})"
    finally:
        stack.close()
    if rows:  # also what an interrupted or failed run measured before it stopped
        _print_figures(rows)
    console.print(f"{time.monotonic() - began:.0f} s in all", highlight=False)
    problems = [f"{row.scenario}: {row.problem()}" for row in rows if row.problem()]
    if error is None and problems:
        error = (
            f"{len(problems)} scenario(s) not clean: {'; '.join(problems)} (logs in {stack.logs})"
        )
    if error is None and temporary:
        remove(directory)
    if error is not None:
        fail(error, code=130 if error == "interrupted" else 1)


def _print_figures(rows: list[Row]) -> None:
    from offramp.bench.figures import details, table

    # Wide enough for the table even when the output goes to a file or a pipe.
    wide = Console(width=max(console.width, 120), highlight=False)
    wide.print(table(rows))
    for line in details(rows):
        wide.print(line, soft_wrap=True)
