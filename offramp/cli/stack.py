"""Commands for the local stack and the worker: `dev`, `chain-setup`, `worker`."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from offramp.cli.app import app, console, fail
from offramp.config import DEFAULT_TASK_QUEUE

# The devstack (web3, eth_account) is imported by the commands that use it: the order commands
# start in half the time without it.


def _stop_on_sigterm() -> None:
    # SIGTERM unwinds like Ctrl-C so the `finally` blocks stop every child process.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="where SQLite, chain state and logs live")] = Path(
        "data"
    ),
    temporal_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_TEMPORAL_PORT")] = 7233,
    ui_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_UI_PORT")] = 8233,
    anvil_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_ANVIL_PORT")] = 8545,
    simulator_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_SIMULATOR_PORT")] = 8780,
    webhooks_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_WEBHOOKS_PORT")] = 8790,
    block_time: Annotated[float, typer.Option(help="seconds between anvil blocks")] = 1.0,
    task_queue: Annotated[str, typer.Option(envvar="OFFRAMP_TASK_QUEUE")] = DEFAULT_TASK_QUEUE,
    worker: Annotated[bool, typer.Option(help="run the worker too")] = True,
    simulator: Annotated[bool, typer.Option(help="run the Kado simulator too")] = True,
    webhooks: Annotated[bool, typer.Option(help="run the webhook receiver too")] = True,
) -> None:
    """Run the local stack (Temporal dev server + Web UI, anvil with the test token, webhook
    receiver, Kado simulator sending it webhooks, worker) until Ctrl-C or SIGTERM."""
    from offramp.devstack.processes import ProcessFailed
    from offramp.devstack.stack import READY_LINE, LocalStack, StackSettings

    _stop_on_sigterm()
    settings = StackSettings(
        data_dir=data_dir.resolve(),
        temporal_port=temporal_port,
        ui_port=ui_port,
        anvil_port=anvil_port,
        simulator_port=simulator_port,
        webhooks_port=webhooks_port,
        block_time=block_time,
        task_queue=task_queue,
        with_worker=worker,
        with_simulator=simulator,
        with_webhooks=webhooks,
    )
    stack = LocalStack(settings)
    try:
        with console.status("starting the local stack..."):
            info = stack.start()
        table = Table(title="Local stack", show_header=False)
        for name, where in info.describe():
            table.add_row(name, where)
        table.add_row("Logs", str(stack.logs_dir))
        console.print(table)
        console.print(f"{READY_LINE}: press Ctrl-C to stop", highlight=False)
        sys.stdout.flush()
        stack.supervise()
    except KeyboardInterrupt:
        console.print("stopping...")
    except ProcessFailed as exc:
        fail(str(exc))
    finally:
        stack.stop()
    console.print("stopped")


@app.command("chain-setup")
def chain_setup(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of a local development chain")],
    chains_file: Annotated[Path, typer.Option(help="where to write the chains configuration")],
    confirmations: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Deploy the test token on a development chain, fund the hot wallet and write the chains
    file the worker reads (OFFRAMP_CHAINS_FILE). Idempotent. Development chains only."""
    from web3.exceptions import Web3Exception

    from offramp.devstack.chain import prepare_chain, web3_for

    if not web3_for(rpc_url).is_connected():
        fail(f"cannot reach a JSON-RPC node at {rpc_url}")
    try:
        chain = prepare_chain(rpc_url)
        chain.write_chains_file(chains_file, confirmations=confirmations)
    except (RuntimeError, OSError, ValueError, Web3Exception) as exc:
        fail(f"chain setup on {rpc_url} failed: {type(exc).__name__}: {exc}")
    console.print(f"token {chain.token_address} on chain {chain.chain_id}; wrote {chains_file}")


@app.command("worker")
def run_worker() -> None:
    """Run a worker (configuration from OFFRAMP_* and TEMPORAL_* environment variables)."""
    from worker.main import main as worker_main

    raise typer.Exit(worker_main())
