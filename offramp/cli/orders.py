"""Commands for wallet backends and operators: start, status, list, approve, reject, cancel,
poll-now, replay. They connect like the worker does (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...)."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Column, Table
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from offramp import search_attributes as sa
from offramp.cli.app import CliError, app, console, run_async
from offramp.config import DEFAULT_TASK_QUEUE
from offramp.orders.models import (
    Decision,
    SellOrderInput,
    SellOrderState,
    workflow_id_for,
)
from offramp.orders.render import list_query, render_state
from offramp.orders.starter import start_sell_order
from offramp.providers import DEFAULT_PROVIDER
from offramp.temporal_client import connect
from offramp.validation import describe

OrderIdArg = Annotated[str, typer.Argument(help="the provider's order id")]
OperatorOpt = Annotated[str, typer.Option("--operator", help="who decides (shown in history)")]
NoteOpt = Annotated[str, typer.Option(help="a note for the timeline")]
TaskQueueOpt = Annotated[str, typer.Option(envvar="OFFRAMP_TASK_QUEUE")]


async def _client() -> Client:
    try:
        return await connect()
    except RuntimeError as exc:
        raise CliError(f"cannot connect to Temporal: {exc}") from None


_LIST_COLUMNS = (
    sa.ORDER_ID,
    sa.STAGE,
    sa.TRANSFER_STATUS,
    sa.AMOUNT,
    sa.NEEDS_ATTENTION,
    sa.TX_HASH,
)


@app.command()
def start(
    order_id: OrderIdArg,
    max_amount: Annotated[str, typer.Option(help="most this order may pay, in whole units")],
    user_ref: Annotated[str | None, typer.Option(help="expected userRef of the order")] = None,
    wallet_address: Annotated[str | None, typer.Option(help="expected walletAddress")] = None,
    task_queue: TaskQueueOpt = DEFAULT_TASK_QUEUE,
    wait: Annotated[bool, typer.Option(help="wait for the result")] = False,
    provider: Annotated[str, typer.Option(help="whose order it is")] = DEFAULT_PROVIDER,
) -> None:
    """Start a sell order (or show the one already started for this order id)."""
    try:
        request = SellOrderInput(
            order_id=order_id,
            provider=provider,
            user_ref=user_ref,
            wallet_address=wallet_address,
            max_amount=_decimal(max_amount, "max_amount"),
        )
    except ValidationError as exc:
        raise typer.BadParameter(describe(exc)) from None

    async def go() -> None:
        client = await _client()
        handle = await start_sell_order(client, request, task_queue=task_queue)
        # A closed workflow for this order comes back as a handle without a run id: look it up.
        run_id = handle.result_run_id or handle.run_id or (await handle.describe()).run_id
        console.print(f"workflow {handle.id} (run {run_id})", highlight=False)
        if wait:
            result = await handle.result()
            console.print_json(result.model_dump_json())

    run_async(go())


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{name}: {text!r} is not a decimal number") from None
    return value


async def _state(client: Client, order_id: str) -> SellOrderState:
    handle = client.get_workflow_handle(workflow_id_for(order_id))
    try:
        state: SellOrderState = await handle.query("state", result_type=SellOrderState)
    except RPCError as exc:
        raise CliError(f"order {order_id}: {exc.message}") from None
    return state


@app.command()
def status(
    order_id: OrderIdArg,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw state as JSON")] = False,
) -> None:
    """Show an order's state (the workflow's `state` query)."""

    async def go() -> None:
        state = await _state(await _client(), order_id)
        if as_json:
            console.print_json(state.model_dump_json())
        else:
            console.print(render_state(state), markup=False, highlight=False, soft_wrap=True)

    run_async(go())


@app.command("list")
def list_orders(
    stage: Annotated[str | None, typer.Option(help="e.g. TRACKING, REJECTED")] = None,
    needs_attention: Annotated[bool, typer.Option(help="only orders needing a person")] = False,
    chain: Annotated[str | None, typer.Option()] = None,
    asset: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """List sell orders by search attributes."""

    async def go() -> None:
        client = await _client()
        query = list_query(stage=stage, needs_attention=needs_attention, chain=chain, asset=asset)
        rows = []
        async for wf in client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            cells = [_cell(attrs.get(key)) for key in _LIST_COLUMNS]
            cells[-1] = _short_hash(cells[-1])  # in full: `offramp status`
            rows.append([*cells, wf.start_time.strftime("%Y-%m-%d %H:%M:%S")])
        # On a narrow terminal the order id stays whole (it is what the other commands take).
        table = Table(
            Column("order", no_wrap=True, min_width=max((len(r[0]) for r in rows), default=5)),
            "stage",
            "status",
            "amount",
            "attention",
            "tx",
            "started",
        )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(f"{len(rows)} order(s) matching: {query}", highlight=False)

    run_async(go())


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _short_hash(tx_hash: str) -> str:
    return f"{tx_hash[:10]}…{tx_hash[-4:]}" if len(tx_hash) > 16 else tx_hash


def _decide(update: str, order_id: str, operator: str, note: str) -> None:
    async def go() -> None:
        client = await _client()
        handle = client.get_workflow_handle(workflow_id_for(order_id))
        try:
            message = await handle.execute_update(
                update, Decision(operator=operator, note=note), result_type=str
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise CliError(f"{update} refused: {getattr(cause, 'message', cause)}") from None
        except RPCError as exc:
            if "already completed" in exc.message:  # a decision after the end is a refusal too
                raise CliError(f"{update} refused: the order already ended") from None
            raise CliError(f"order {order_id}: {exc.message}") from None
        console.print(message, highlight=False)

    run_async(go())


@app.command()
def approve(order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "") -> None:
    """Approve an order waiting for review."""
    _decide("approve", order_id, operator, note)


@app.command()
def reject(order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "") -> None:
    """Reject an order waiting for review (nothing is sent)."""
    _decide("reject", order_id, operator, note)


@app.command()
def cancel(order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "") -> None:
    """Cancel an order; refused once a transaction may exist."""
    _decide("cancel", order_id, operator, note)


@app.command("poll-now")
def poll_now(order_id: OrderIdArg) -> None:
    """Make an order poll the provider now (what a webhook receiver would send)."""

    async def go() -> None:
        handle = (await _client()).get_workflow_handle(workflow_id_for(order_id))
        try:
            await handle.signal("poll_now")
        except RPCError as exc:
            raise CliError(f"order {order_id}: {exc.message}") from None
        console.print(f"poll_now sent to {handle.id}", highlight=False)

    run_async(go())


@app.command()
def replay(
    history_file: Annotated[
        Path | None, typer.Option(help="a JSON history (temporal workflow show -o json)")
    ] = None,
    workflow_id: Annotated[str | None, typer.Option(help="replay a live workflow by id")] = None,
) -> None:
    """Replay a recorded or live history against the current code: is the change compatible?"""
    from offramp.orders.replay import HistoryError, replay_history_file, replay_live

    if (history_file is None) == (workflow_id is None):
        raise typer.BadParameter("give exactly one of --history-file or --workflow-id")
    # A failing replay is reported once, below: not also as the SDK's logged traceback.
    logging.getLogger("temporalio").propagate = False  # not to the CLI's log handler either
    logging.getLogger("temporalio").addHandler(logging.NullHandler())

    async def go() -> None:
        try:
            if history_file is not None:
                what = str(history_file)
                error = await replay_history_file(history_file)
            else:
                assert workflow_id is not None
                what = workflow_id
                client = await _client()
                try:
                    error = await replay_live(client, workflow_id)
                except RPCError as exc:
                    raise CliError(f"{workflow_id}: {exc.message}") from None
        except HistoryError as exc:
            raise CliError(f"{what}: cannot replay: {exc}") from None
        if error is not None:
            raise CliError(f"{what}: NOT compatible with the current code: {error}")
        console.print(f"{what}: compatible with the current code", highlight=False)

    run_async(go())


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="where to write the JSON schemas")] = Path("contract"),
) -> None:
    """Write the workflow contract (type, task queue, JSON Schemas of input/result/state)."""
    from offramp.orders.contract import write

    for path in write(out):
        console.print(f"wrote {path}", highlight=False)
