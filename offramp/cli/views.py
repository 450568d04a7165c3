"""`offramp views`: the Web UI's saved views for operators, as List Filter queries over the search
attributes the engine registers, the columns to show, and a link that opens each one.

The UI's default list mixes every workflow type (payments, hot-wallet entities, nonce fills) and
shows an order that ended REJECTED or PROVIDER_FAILED as a green "Completed": the workflow did
complete, the order did not settle. The `Stage` search attribute holds the order's outcome, so a
column and a filter on it tell outcomes apart at a glance without any extra upsert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import quote

import typer

from offramp import search_attributes as sa
from offramp.cli.app import app, console
from offramp.cli.output import JsonOpt, print_json
from offramp.orders.models import WORKFLOW_TYPE, Stage

# Columns to add in the UI's "Configure columns" (besides Status, Workflow ID, Start/End Time).
COLUMNS: Final = (
    sa.ORDER_ID.name,
    sa.STAGE.name,
    sa.NEEDS_ATTENTION.name,
    sa.TRANSFER_STATUS.name,
    sa.AMOUNT.name,
    sa.ASSET.name,
    sa.CHAIN.name,
    sa.TX_HASH.name,
)
_ORDERS = f'WorkflowType = "{WORKFLOW_TYPE}"'
# Terminal stages that are not a settled order: each needs someone to look, or to tell the user.
NOT_SETTLED: Final = tuple(s.value for s in Stage if s.is_terminal and s is not Stage.SETTLED)
_NOT_SETTLED_LIST = ", ".join(f'"{stage}"' for stage in NOT_SETTLED)


@dataclass(frozen=True)
class SavedView:
    name: str
    query: str
    purpose: str


VIEWS: Final = (
    SavedView("Sell orders", _ORDERS, "every order, none of the engine's other workflows"),
    SavedView(
        "Orders needing attention",
        f"{_ORDERS} AND {sa.NEEDS_ATTENTION.name} = true",
        "a person must act (stuck transaction, provider failure, unknown status)",
    ),
    SavedView(
        "Orders in flight",
        f'{_ORDERS} AND ExecutionStatus = "Running"',
        "not finished yet; the Stage column says where each one is",
    ),
    SavedView(
        "Orders that did not settle",
        f"{_ORDERS} AND {sa.STAGE.name} IN ({_NOT_SETTLED_LIST})",
        "ended REJECTED, CANCELLED, EXPIRED, PROVIDER_FAILED, TX_REVERTED or UNRESOLVED",
    ),
)


def view_url(web_ui_url: str, namespace: str, view: SavedView) -> str:
    """The Web UI's workflow list filtered by the view's query."""
    return f"{web_ui_url.rstrip('/')}/namespaces/{namespace}/workflows?query={quote(view.query)}"


@app.command()
def views(
    web_ui_url: Annotated[
        str, typer.Option(envvar="OFFRAMP_WEB_UI_URL", help="where the Temporal Web UI is")
    ] = "http://localhost:8233",
    namespace: Annotated[str, typer.Option(envvar="TEMPORAL_NAMESPACE")] = "default",
    as_json: JsonOpt = False,
) -> None:
    """The Web UI's saved views for sell orders: query, columns, and a link to open each."""
    if as_json:
        print_json(
            {
                "columns": list(COLUMNS),
                "views": [
                    {
                        "name": v.name,
                        "query": v.query,
                        "purpose": v.purpose,
                        "url": view_url(web_ui_url, namespace, v),
                    }
                    for v in VIEWS
                ],
            }
        )
        return
    console.print(f"columns to add: {', '.join(COLUMNS)}", highlight=False)
    for v in VIEWS:
        console.print(f"\n{v.name}: {v.purpose}", highlight=False, markup=False)
        console.print(f"  query  {v.query}", highlight=False, markup=False, soft_wrap=True)
        console.print(
            f"  open   {view_url(web_ui_url, namespace, v)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
