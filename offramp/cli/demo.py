"""`offramp demo`: the README's main command (`make run`).

Brings the local stack up, creates a batch of SELL orders in the Kado simulator (happy token and
native orders, orders that must be rejected, one waiting for an operator's approval, one whose
transaction gets stuck and is fee-bumped, one the provider fails after the deposit), starts a
workflow for each, shows their progress live, approves the one waiting for approval, and ends with
a summary. Exits 0 only when every order reached the outcome its scenario expects. The stack is
stopped on exit, Ctrl-C, SIGTERM or any error (`--keep-running` keeps it up until Ctrl-C).
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from offramp.chain.names import STATE_QUERY as PAYMENT_STATE_QUERY
from offramp.cli.app import app, console, fail
from offramp.cli.views import VIEWS, view_url
from offramp.config import DEFAULT_TASK_QUEUE
from offramp.converter import data_converter
from offramp.devstack.processes import ProcessFailed, port_open
from offramp.orders.models import (
    Decision,
    RejectReason,
    SellOrderInput,
    SellOrderResult,
    SellOrderState,
    Stage,
)
from offramp.orders.names import APPROVE_UPDATE, STATE_QUERY
from offramp.orders.starter import start_sell_order

if TYPE_CHECKING:  # imported when the command runs: `offramp --help` and the others start faster
    import httpx

    from offramp.devstack.stack import LocalStack, StackInfo, StackSettings
    from offramp.simulator.admin import SimulatorAdmin

DEMO_USER = "demo-user"
APPROVAL = Decision(operator="offramp-demo", note="approved by `offramp demo`")
# A transaction not mined within this is fee-bumped (the engine's default is 60 s).
BUMP_AFTER_SECONDS = 3.0
# How long the stuck transaction may wait for its fee bump before mining resumes anyway.
FEE_BUMP_WAIT_SECONDS = 60.0
REFRESH_SECONDS = 1.0
# The simulator is local and quick: poll it often (production defaults: 5 s growing to 1 min).
POLL_INITIAL = timedelta(seconds=1)
POLL_MAX = timedelta(seconds=2)


class DemoError(Exception):
    """The demo cannot go on (reported as one line)."""


# ---- the scenario plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The outcome an order's scenario must reach."""

    outcome: Stage
    reject_reason: RejectReason | None = None
    min_tx_hashes: int = 0
    needs_attention: bool = False

    def problem(self, result: SellOrderResult) -> str | None:
        """Why `result` is not what was expected, or None."""
        if result.outcome is not self.outcome:
            got = result.outcome.value + (f" ({result.reason})" if result.reason else "")
            return f"expected {self.outcome.value}, got {got}"
        if self.reject_reason is not None and result.reject_reason is not self.reject_reason:
            return f"expected reject reason {self.reject_reason.value}, got {result.reject_reason}"
        if len(result.tx_hashes) < self.min_tx_hashes:
            return f"expected ≥{self.min_tx_hashes} tx hashes, got {len(result.tx_hashes)}"
        if self.needs_attention and not result.needs_attention:
            return "expected needs_attention"
        return None


SETTLED = Expected(Stage.SETTLED)


def _rejected(reason: RejectReason) -> Expected:
    return Expected(Stage.REJECTED, reject_reason=reason)


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: Expected
    asset: str = "USDC"
    amount: Decimal = Decimal("10")
    # More fields of the simulator's order (SimulatorAdmin.create_order).
    sim: Mapping[str, Any] = field(default_factory=dict)
    # The most the order may pay (SellOrderInput.max_amount); None: exactly its amount.
    max_amount: Decimal | None = None
    approve: bool = False  # approve it when it waits for an operator
    stuck: bool = False  # its first transaction is broadcast while mining is paused


def token_happy(i: int) -> Scenario:
    return Scenario("token_happy", SETTLED, "USDC", Decimal(25) + Decimal(i) * Decimal("7.25"))


def native_happy(i: int) -> Scenario:
    return Scenario("native_happy", SETTLED, "ETH", Decimal("0.01") + Decimal(i) / 1000)


def token_late(i: int) -> Scenario:
    """The provider serves the deposit address only after a few seconds (AWAITING_ORDER)."""
    amount = Decimal(40) + Decimal(i) / 4
    return Scenario("token_not_ready_yet", SETTLED, "USDC", amount, {"ready_after_seconds": 3})


def approval(_: int) -> Scenario:
    # At or above the local chain's USDC review threshold (5000): waits for an operator.
    return Scenario("needs_approval", SETTLED, "USDC", Decimal("6000"), approve=True)


def stuck_tx(_: int) -> Scenario:
    bumped = Expected(Stage.SETTLED, min_tx_hashes=2)
    return Scenario("stuck_tx_fee_bump", bumped, "USDC", Decimal("42"), stuck=True)


def provider_failure(_: int) -> Scenario:
    return Scenario(
        "provider_failure",
        Expected(Stage.PROVIDER_FAILED, needs_attention=True),
        sim={"scenario": "provider_failure"},
    )


def reject_buy(_: int) -> Scenario:
    return Scenario(
        "reject_buy_order", _rejected(RejectReason.NOT_A_SELL_ORDER), sim={"order_type": "buy"}
    )


def reject_user_ref(_: int) -> Scenario:
    return Scenario(
        "reject_user_ref",
        _rejected(RejectReason.USER_REF_MISMATCH),
        sim={"user_ref": "someone-else"},
    )


def reject_over_max(_: int) -> Scenario:
    return Scenario(
        "reject_over_max",
        _rejected(RejectReason.OVER_MAX_AMOUNT),
        amount=Decimal("20"),
        max_amount=Decimal("19.99"),
    )


def reject_chain(_: int) -> Scenario:
    return Scenario(
        "reject_chain",
        _rejected(RejectReason.UNSUPPORTED_CHAIN),
        sim={"overrides": {"blockchain": "solana"}},
    )


# Every scenario once, most telling first (a small --orders takes the first ones)...
CORE: tuple[Callable[[int], Scenario], ...] = (
    token_happy,
    native_happy,
    approval,
    stuck_tx,
    provider_failure,
    reject_buy,
    reject_user_ref,
    reject_over_max,
    reject_chain,
)
# ...then happy orders, in turn.
EXTRA: tuple[Callable[[int], Scenario], ...] = (token_happy, native_happy, token_late)


def plan_scenarios(count: int) -> list[Scenario]:
    plan = [make(i) for i, make in enumerate(CORE[:count])]
    for i in range(len(plan), count):
        plan.append(EXTRA[(i - len(CORE)) % len(EXTRA)](i))
    return plan


# ---- orders ------------------------------------------------------------------------------------


@dataclass
class DemoOrder:
    order_id: str
    scenario: Scenario
    request: SellOrderInput
    handle: WorkflowHandle[Any, SellOrderResult] | None = None
    stage: str = "queued"
    tx_hashes: list[str] = field(default_factory=list)
    started: float | None = None  # time.monotonic()
    finished: float | None = None
    result: SellOrderResult | None = None
    error: str | None = None
    approved: bool = False

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def problem(self) -> str | None:
        if self.error is not None:
            return self.error
        if self.result is None:
            return "did not finish"
        return self.scenario.expected.problem(self.result)

    def seconds(self) -> float | None:
        if self.result is not None:
            return (self.result.finished_at - self.result.started_at).total_seconds()
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


async def create_orders(admin: SimulatorAdmin, plan: list[Scenario]) -> list[DemoOrder]:
    """The simulator's side of each order, under fresh ids (a second run never collides)."""
    run_tag = secrets.token_hex(3)
    orders = []
    for n, scenario in enumerate(plan, start=1):
        order_id = f"demo-{run_tag}-{n:02d}"
        fields = {"user_ref": DEMO_USER, **scenario.sim}
        await admin.create_order(
            order_id=order_id, asset=scenario.asset, amount=scenario.amount, **fields
        )
        request = SellOrderInput(
            order_id=order_id,
            user_ref=DEMO_USER,
            max_amount=scenario.max_amount or scenario.amount,
            poll_initial_interval=POLL_INITIAL,
            poll_max_interval=POLL_MAX,
        )
        orders.append(DemoOrder(order_id, scenario, request))
    return orders


@dataclass
class Engine:
    client: Client
    task_queue: str
    rpc_url: str
    block_time: float


async def start(engine: Engine, order: DemoOrder) -> None:
    order.handle = await start_sell_order(
        engine.client, order.request, task_queue=engine.task_queue
    )
    order.started = time.monotonic()
    order.stage = Stage.RECEIVED.value


async def refresh(order: DemoOrder) -> None:
    """Stage and hashes from the `state` query; approve the order when it waits for that."""
    assert order.handle is not None
    try:
        state = await order.handle.query(STATE_QUERY, result_type=SellOrderState)
    except RPCError:
        return  # e.g. the worker is busy: try again next time
    order.stage = state.stage.value
    order.tx_hashes = list(state.tx_hashes)
    if order.scenario.approve and state.stage is Stage.AWAITING_APPROVAL and not order.approved:
        order.approved = True
        try:
            message = await order.handle.execute_update(APPROVE_UPDATE, APPROVAL, result_type=str)
        except (WorkflowUpdateFailedError, RPCError) as exc:
            message = f"approve refused: {getattr(exc, 'cause', None) or exc}"
        console.print(f"{order.order_id}: {message}", highlight=False)


async def follow(order: DemoOrder) -> None:
    """Refresh the order until its workflow ends; keep the result."""
    assert order.handle is not None
    result = asyncio.ensure_future(order.handle.result())
    try:
        while not (await asyncio.wait({result}, timeout=REFRESH_SECONDS))[0]:
            await refresh(order)
        order.result = result.result()
        order.stage = order.result.outcome.value
        order.tx_hashes = list(order.result.tx_hashes)
    except WorkflowFailureError as exc:
        order.error = f"workflow failed: {exc.cause or exc}"
    except Exception as exc:  # e.g. the server went away: this order's error, not the demo's
        order.error = _one_line(exc)
    finally:
        result.cancel()
        order.finished = time.monotonic()
    console.print(finished_line(order), highlight=False)


async def anvil_rpc(http: httpx.AsyncClient, rpc_url: str, method: str, params: list[Any]) -> None:
    response = await http.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    body = response.json()
    if "error" in body:
        raise DemoError(f"anvil {method}: {body['error']}")


@asynccontextmanager
async def mining_paused(engine: Engine) -> AsyncIterator[None]:
    """No blocks until the block exits: a transaction sent meanwhile stays in the mempool."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        await anvil_rpc(http, engine.rpc_url, "evm_setIntervalMining", [0])
        await anvil_rpc(http, engine.rpc_url, "evm_setAutomine", [False])
        try:
            yield
        finally:
            interval = max(1, round(engine.block_time))
            await anvil_rpc(http, engine.rpc_url, "evm_setIntervalMining", [interval])


async def wait_for_fee_bump(engine: Engine, order: DemoOrder) -> None:
    """Until the order's payment signed a second (fee-bumped) transaction; bounded."""
    from offramp.chain.models import PaymentState, payment_workflow_id

    payment = engine.client.get_workflow_handle(payment_workflow_id(order.request.payment_id))
    deadline = time.monotonic() + FEE_BUMP_WAIT_SECONDS
    while not order.done and time.monotonic() < deadline:
        with suppress(RPCError):  # the payment child is not started yet
            state = await payment.query(PAYMENT_STATE_QUERY, result_type=PaymentState)
            if len(state.attempts) >= 2:
                console.print(
                    f"{order.order_id}: stuck transaction fee-bumped "
                    f"({len(state.attempts)} signed); mining resumes",
                    highlight=False,
                )
                return
        await asyncio.sleep(0.5)
    console.print(f"{order.order_id}: no fee bump seen; mining resumes", highlight=False)


async def run_orders(engine: Engine, orders: list[DemoOrder]) -> None:
    """The stuck order first, alone, while mining is paused until its fee bump; then the rest."""
    followers: list[asyncio.Task[None]] = []

    async def launch(order: DemoOrder) -> None:
        await start(engine, order)
        followers.append(asyncio.create_task(follow(order)))

    try:
        stuck = [o for o in orders if o.scenario.stuck]
        if stuck:
            console.print(
                "mining paused: the stuck order's transaction waits in the mempool for a fee bump",
                highlight=False,
            )
            async with mining_paused(engine):
                for order in stuck:
                    await launch(order)
                await asyncio.gather(*(wait_for_fee_bump(engine, o) for o in stuck))
        for order in orders:
            if not order.scenario.stuck:
                await launch(order)
        await asyncio.gather(*followers)
    finally:
        for task in followers:
            task.cancel()


# ---- progress and summary ----------------------------------------------------------------------


def _txs(hashes: list[str], *, full: bool = False) -> str:
    """The latest hash (the confirmed one once mined), and how many more were signed."""
    if not hashes:
        return ""
    latest = hashes[-1] if full else f"{hashes[-1][:6]}…{hashes[-1][-4:]}"
    return latest + (f" (+{len(hashes) - 1})" if len(hashes) > 1 else "")


def _time(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"


def _stage_style(order: DemoOrder) -> str:
    if not order.done:
        return "cyan"
    return "green" if order.problem() is None else "red"


def finished_line(order: DemoOrder) -> str:
    problem = order.problem()
    mark = "✓" if problem is None else "✗"
    return (
        f"{mark} {order.order_id} {order.scenario.name}: {order.stage} in {_time(order.seconds())}"
        + (f" ({problem})" if problem else "")
    )


def stage_table(orders: list[DemoOrder], width: int) -> Table:
    """The live view: each order's stage (and latest tx when the terminal is wide enough)."""
    columns = (
        ("order", "scenario", "stage", "tx", "time")
        if width >= 90
        else ("order", "scenario", "stage", "time")
    )
    table = Table(title="Orders", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True, justify="right" if column == "time" else "left")
    for order in orders:
        cells = {
            "order": order.order_id,
            "scenario": order.scenario.name,
            "stage": f"[{_stage_style(order)}]{order.stage}[/]",
            "tx": _txs(order.tx_hashes),
            "time": _time(order.seconds()),
        }
        table.add_row(*(cells[column] for column in columns))
    return table


async def show_progress(
    stack: LocalStack, orders: list[DemoOrder], work: asyncio.Task[None], time_limit: float
) -> None:
    """Live bar and stage table until `work` ends; stopped after `time_limit` s, or if a child
    process died."""
    progress = Progress(
        TextColumn("orders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    bar = progress.add_task("orders", total=len(orders))
    deadline = time.monotonic() + time_limit

    def frame() -> RenderableType:
        progress.update(bar, completed=sum(o.done for o in orders))
        return Group(progress, stage_table(orders, console.width))

    with Live(frame(), console=console, refresh_per_second=4, transient=True) as live:
        while not work.done():
            await asyncio.wait({work}, timeout=0.25)
            live.update(frame())
            stack.check()
            if time.monotonic() > deadline:
                work.cancel()
                with suppress(asyncio.CancelledError):
                    await work
                console.print(f"stopped waiting after {time_limit:.0f} s", highlight=False)
    error = None if work.cancelled() else work.exception()
    if error is not None:
        raise error


def _note(order: DemoOrder) -> str:
    """What went wrong, or a short word on what happened (the full story is in the Web UI)."""
    problem = order.problem()
    if problem is not None:
        return f"[red]{problem}[/]"
    assert order.result is not None
    result = order.result
    if result.reject_reason is not None:
        return result.reject_reason.value
    if result.needs_attention:
        return "⚠ needs attention"
    if len(result.tx_hashes) > 1:
        return f"fee-bumped: {len(result.tx_hashes)} txs"
    if order.approved:
        return f"approved by {APPROVAL.operator}"
    return ""


def summary_table(orders: list[DemoOrder], width: int) -> Table:
    """One row per order; the tx column when the terminal is wide enough (full hashes if very)."""
    with_tx, full_tx = width >= 104, width >= 160
    table = Table(title="Summary", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("  order", "scenario", "outcome"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold")
    if with_tx:
        table.add_column("tx hash", no_wrap=True)
    table.add_column("time", no_wrap=True, justify="right")
    for order in orders:
        ok = order.problem() is None
        cells = [
            ("[green]✓[/] " if ok else "[red]✗[/] ") + order.order_id,
            order.scenario.name,
            order.result.outcome.value if order.result else order.stage,
            _note(order),
        ]
        if with_tx:
            cells.append(_txs(order.tx_hashes, full=full_tx))
        table.add_row(*cells, _time(order.seconds()))
    return table


def verdict(orders: list[DemoOrder]) -> str | None:
    """None when every order reached its expected outcome; else the one-line reason."""
    bad = [o for o in orders if o.problem() is not None]
    if not bad:
        return None
    details = "; ".join(f"{o.order_id} ({o.scenario.name}): {o.problem()}" for o in bad)
    return f"{len(bad)} of {len(orders)} orders did not reach their expected outcome: {details}"


# ---- the command -------------------------------------------------------------------------------


async def run_demo(
    stack: LocalStack, info: StackInfo, count: int, time_limit: float
) -> list[DemoOrder]:
    if info.simulator_url is None:
        raise DemoError("the demo needs the Kado simulator")
    client = await Client.connect(
        info.temporal_address, namespace="default", data_converter=data_converter()
    )
    from offramp.simulator.admin import SimulatorAdmin

    engine = Engine(client, info.task_queue, info.rpc_url, stack.settings.block_time)
    async with SimulatorAdmin(info.simulator_url) as admin:
        orders = await create_orders(admin, plan_scenarios(count))
    console.print(
        f"{len(orders)} orders created in the Kado simulator; starting their workflows",
        highlight=False,
    )
    work = asyncio.create_task(run_orders(engine, orders))
    try:
        await show_progress(stack, orders, work, time_limit)
    finally:
        work.cancel()
    return orders


def report(orders: list[DemoOrder], began: float) -> str | None:
    """Print the summary; return the verdict (None: every order ended as expected)."""
    console.print(summary_table(orders, console.width))
    error = verdict(orders)
    if error is None:
        console.print(
            f"all {len(orders)} orders reached their expected outcome "
            f"({time.monotonic() - began:.0f} s in all)",
            highlight=False,
        )
    return error


def orders_view_url(info: StackInfo) -> str:
    """The Web UI's list of sell orders only (`offramp views` has the other saved views)."""
    return view_url(info.web_ui_url, "default", VIEWS[0])


def _process_failure(exc: ProcessFailed) -> str:
    """'<name> exited ...:' and the last line of its log, which usually says why."""
    head, _, tail = str(exc).partition("\n")
    last = [line.strip() for line in tail.splitlines() if line.strip()]
    return f"{head.rstrip(':')}: {last[-1]}" if last else head.rstrip(":")


def _busy_ports(settings: StackSettings) -> list[str]:
    ports = {
        "--temporal-port": settings.temporal_port,
        "--ui-port": settings.ui_port,
        "--anvil-port": settings.anvil_port,
        "--simulator-port": settings.simulator_port,
        "--webhooks-port": settings.webhooks_port,
    }
    return [f"{port} ({option})" for option, port in ports.items() if port_open(port)]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=200, help="how many sell orders to run")] = 20,
    keep_running: Annotated[
        bool, typer.Option(help="keep the stack up after the summary until Ctrl-C / SIGTERM")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="seconds the orders may take")] = 300.0,
    data_dir: Annotated[Path, typer.Option(help="where SQLite, chain state and logs live")] = Path(
        "data"
    ),
    temporal_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_TEMPORAL_PORT")] = 7233,
    ui_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_UI_PORT")] = 8233,
    anvil_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_ANVIL_PORT")] = 8545,
    simulator_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_SIMULATOR_PORT")] = 8780,
    webhooks_port: Annotated[int, typer.Option(envvar="OFFRAMP_DEV_WEBHOOKS_PORT")] = 8790,
    task_queue: Annotated[str, typer.Option(envvar="OFFRAMP_TASK_QUEUE")] = DEFAULT_TASK_QUEUE,
) -> None:
    """Bring the local stack up and run a batch of sell orders through it: happy paths,
    rejections, an approval, a fee-bumped stuck transaction and a provider failure. Exits 0 only
    if every order ends as its scenario expects."""
    from offramp.devstack.stack import LocalStack, StackSettings

    # SIGTERM unwinds like Ctrl-C, so the stack is stopped below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = StackSettings(
        data_dir=data_dir.resolve(),
        temporal_port=temporal_port,
        ui_port=ui_port,
        anvil_port=anvil_port,
        simulator_port=simulator_port,
        webhooks_port=webhooks_port,
        task_queue=task_queue,
        bump_after_seconds=BUMP_AFTER_SECONDS,
    )
    busy = _busy_ports(settings)
    if busy:
        fail(f"ports in use: {', '.join(busy)}; is a stack already running? (choose other ports)")
    stack = LocalStack(settings)
    began = time.monotonic()
    error: str | None = None
    summarized = False
    try:
        with console.status("starting the local stack..."):
            info = stack.start()
        console.print(
            f"local stack up in {time.monotonic() - began:.0f} s (Temporal {info.temporal_address},"
            f" chain {info.rpc_url}, simulator {info.simulator_url}; logs in {stack.logs_dir})",
            highlight=False,
        )
        # While the stack is up, so the orders can be watched as they run.
        console.print(
            f"Web UI (while the demo runs): {orders_view_url(info)}",
            highlight=False,
            soft_wrap=True,
        )
        results = asyncio.run(run_demo(stack, info, orders, timeout))
        error = report(results, began)
        summarized = True
        if keep_running:
            console.print(
                f"the stack keeps running (Web UI: {orders_view_url(info)}): press Ctrl-C to stop",
                highlight=False,
            )
            stack.supervise()
        else:
            console.print("stopping the stack (--keep-running keeps it and the Web UI up)")
    except KeyboardInterrupt:
        # After the summary, Ctrl-C is how --keep-running ends: the verdict stands.
        console.print("stopping the stack")
        if not summarized:
            error = "interrupted"
    except ProcessFailed as exc:
        error = f"{_process_failure(exc)} (logs in {stack.logs_dir})"
    except Exception as exc:
        error = _one_line(exc)
    finally:
        stack.stop()
    if error is not None:
        fail(error, code=130 if error == "interrupted" else 1)
