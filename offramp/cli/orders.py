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
from temporalio.client import Client, WorkflowExecution, WorkflowUpdateFailedError
from temporalio.service import RPCError

from offramp import search_attributes as sa
from offramp.cli.app import CliError, app, console, run_async
from offramp.cli.ids import order_ref, workflow_id_of
from offramp.cli.order_status import order_status, render_view
from offramp.cli.output import JsonOpt, print_json
from offramp.cli.stages import stage_option
from offramp.cli.start_check import differing_fields, started_input
from offramp.config import DEFAULT_TASK_QUEUE
from offramp.orders.models import Decision, SellOrderInput
from offramp.orders.names import (
    APPROVE_UPDATE,
    CANCEL_UPDATE,
    POLL_NOW_SIGNAL,
    REJECT_UPDATE,
)
from offramp.orders.render import list_query
from offramp.orders.starter import start_sell_order
from offramp.providers import DEFAULT_PROVIDER
from offramp.temporal_client import connect
from offramp.validation import describe

OrderIdArg = Annotated[
    str, typer.Argument(help="the provider's order id, or its workflow id kado-sell-<order id>")
]
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
    as_json: JsonOpt = False,
) -> None:
    """Start a sell order (or show the one already started for this order with the same input;
    a different input for a started order is refused, naming the fields that differ)."""
    ref = order_ref(order_id)
    try:
        request = SellOrderInput(
            order_id=ref.order_id,
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
        existing = await started_input(client, client.get_workflow_handle(handle.id, run_id=run_id))
        differing = differing_fields(existing, request)
        if differing:
            raise CliError(
                f"order {ref.order_id} was already started ({handle.id} run {run_id}) with a "
                f"different {', '.join(differing)}: not started again, nothing changed "
                f"(`offramp status {ref.order_id}` shows it)"
            )
        if as_json:
            output: dict[str, object] = {"workflow_id": handle.id, "run_id": run_id}
        else:
            console.print(f"workflow {handle.id} (run {run_id})", highlight=False)
        if wait:
            result = await handle.result()
            if as_json:
                output["result"] = result.model_dump(mode="json")
            else:
                console.print_json(result.model_dump_json())
        if as_json:
            print_json(output)

    run_async(go())


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{name}: {text!r} is not a decimal number") from None
    return value


@app.command()
def status(
    order_id: OrderIdArg,
    as_json: JsonOpt = False,
    query: Annotated[
        bool,
        typer.Option(
            help="ask a worker for the full state (a billed query) when one answers within "
            "3 s; --no-query shows only the server's record"
        ),
    ] = True,
) -> None:
    """Show an order: its full state from a worker, or the server's record when no worker
    answers (stage, search attributes, and for a closed order its result). Says which."""
    ref = order_ref(order_id)

    async def go() -> None:
        view = await order_status(await _client(), ref, query=query)
        if as_json:
            print_json(view.to_json())
        else:
            console.print(render_view(view), markup=False, highlight=False, soft_wrap=True)

    run_async(go())


@app.command("list")
def list_orders(
    stage: Annotated[
        str | None,
        typer.Option(help="e.g. TRACKING, REJECTED, awaiting-approval", callback=stage_option),
    ] = None,
    needs_attention: Annotated[bool, typer.Option(help="only orders needing a person")] = False,
    chain: Annotated[str | None, typer.Option()] = None,
    asset: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List sell orders by search attributes."""

    async def go() -> None:
        client = await _client()
        query = list_query(stage=stage, needs_attention=needs_attention, chain=chain, asset=asset)
        found = [wf async for wf in client.list_workflows(query, limit=limit)]
        if as_json:
            print_json({"query": query, "orders": [_listed(wf) for wf in found]})
            return
        rows = []
        for wf in found:
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


def _listed(wf: WorkflowExecution) -> dict[str, object]:
    attrs = wf.typed_search_attributes
    return {
        "workflow_id": wf.id,
        "run_id": wf.run_id,
        "status": wf.status.name if wf.status else None,
        "start_time": wf.start_time.isoformat(),
        "close_time": wf.close_time.isoformat() if wf.close_time else None,
        **{key.name: attrs.get(key) for key in sa.ALL},
    }


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _short_hash(tx_hash: str) -> str:
    return f"{tx_hash[:10]}…{tx_hash[-4:]}" if len(tx_hash) > 16 else tx_hash


def _decide(update: str, order_id: str, operator: str, note: str, as_json: bool) -> None:
    ref = order_ref(order_id)

    async def go() -> None:
        client = await _client()
        handle = client.get_workflow_handle(ref.workflow_id)
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
            raise CliError(f"order {ref.order_id}: {exc.message}") from None
        if as_json:
            print_json({"workflow_id": ref.workflow_id, "update": update, "result": message})
        else:
            console.print(message, highlight=False)

    run_async(go())


@app.command()
def approve(
    order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "", as_json: JsonOpt = False
) -> None:
    """Approve an order waiting for review."""
    _decide(APPROVE_UPDATE, order_id, operator, note, as_json)


@app.command()
def reject(
    order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "", as_json: JsonOpt = False
) -> None:
    """Reject an order waiting for review (nothing is sent)."""
    _decide(REJECT_UPDATE, order_id, operator, note, as_json)


@app.command()
def cancel(
    order_id: OrderIdArg, operator: OperatorOpt, note: NoteOpt = "", as_json: JsonOpt = False
) -> None:
    """Cancel an order; refused once a transaction may exist."""
    _decide(CANCEL_UPDATE, order_id, operator, note, as_json)


@app.command("poll-now")
def poll_now(order_id: OrderIdArg, as_json: JsonOpt = False) -> None:
    """Make an order poll the provider now (what a webhook receiver would send)."""
    ref = order_ref(order_id)

    async def go() -> None:
        handle = (await _client()).get_workflow_handle(ref.workflow_id)
        try:
            await handle.signal(POLL_NOW_SIGNAL)
        except RPCError as exc:
            raise CliError(f"order {ref.order_id}: {exc.message}") from None
        if as_json:
            print_json({"workflow_id": handle.id, "signal": POLL_NOW_SIGNAL})
        else:
            console.print(f"poll_now sent to {handle.id}", highlight=False)

    run_async(go())


@app.command()
def replay(
    history_file: Annotated[
        Path | None, typer.Option(help="a JSON history (temporal workflow show -o json)")
    ] = None,
    workflow_id: Annotated[
        str | None,
        typer.Option(help="replay a live workflow: its id, or an order id"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a recorded or live history against the current code: is the change compatible?
    A history file is replayed as the workflow it records (its id and type), whatever its name."""
    from offramp.orders.replay import HistoryError, load_history, replay, workflow_type_of

    if (history_file is None) == (workflow_id is None):
        raise typer.BadParameter("give exactly one of --history-file or --workflow-id")
    live_id = workflow_id_of(workflow_id) if workflow_id is not None else None
    # A failing replay is reported once, below: not also as the SDK's logged traceback.
    logging.getLogger("temporalio").propagate = False  # not to the CLI's log handler either
    logging.getLogger("temporalio").addHandler(logging.NullHandler())

    async def go() -> None:
        what = str(history_file) if history_file is not None else str(live_id)
        try:
            if history_file is not None:
                history = load_history(history_file)
            else:
                assert live_id is not None
                client = await _client()
                try:
                    history = await client.get_workflow_handle(live_id).fetch_history()
                except RPCError as exc:
                    raise CliError(f"{live_id}: {exc.message}") from None
            error = await replay(history)
        except HistoryError as exc:
            raise CliError(f"{what}: cannot replay: {exc}") from None
        workflow = f"{history.workflow_id}, {workflow_type_of(history) or '?'}"
        if as_json:
            print_json(
                {
                    "history": what,
                    "workflow_id": history.workflow_id,
                    "workflow_type": workflow_type_of(history),
                    "compatible": error is None,
                    "error": error,
                }
            )
        if error is not None:
            raise CliError(f"{what} ({workflow}): NOT compatible with the current code: {error}")
        if not as_json:
            console.print(f"{what} ({workflow}): compatible with the current code", highlight=False)

    run_async(go())


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="where to write the JSON schemas")] = Path("contract"),
) -> None:
    """Write the workflow contract (type, task queue, JSON Schemas of input/result/state)."""
    from offramp.orders.contract import write

    for path in write(out):
        console.print(f"wrote {path}", highlight=False)
