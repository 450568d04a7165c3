"""`offramp wallet`: look at a hot-wallet entity and, for a person, move its next nonce.

    offramp wallet status hot-wallet-<chain id>-<address>
    offramp wallet set-nonce hot-wallet-<chain id>-<address> --nonce 41 --reason "chain reset"

The entity never lowers its nonce by itself (a lagging node must not make it reuse one); when
the chain is truly behind (a reset chain, a deep reorg) it flags `nonce_behind` and waits for
`set-nonce`, which is refused while a nonce at or above the new value is still open."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from offramp.chain.models import SetNonceRequest, WalletSummary
from offramp.chain.names import SET_NONCE_UPDATE, SUMMARY_QUERY
from offramp.cli.app import CliError, app, console, fail, run_async
from offramp.cli.output import JsonOpt, print_json
from offramp.temporal_client import connect
from offramp.validation import describe

wallet_app = typer.Typer(help="Hot-wallet entities: status, set-nonce.", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet")

WalletIdArg = Annotated[
    str, typer.Argument(help="the entity's workflow id, hot-wallet-<chain>-<addr>")
]


async def _client() -> Client:
    try:
        return await connect()
    except RuntimeError as exc:
        raise CliError(f"cannot connect to Temporal: {exc}") from None


def _print(summary: WalletSummary, as_json: bool = False) -> None:
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    console.print(
        f"next nonce {summary.next_nonce} · in flight {summary.in_flight} · queued "
        f"{summary.queued} · runs {summary.runs}"
        + (f" · PAUSED ({summary.pause_reason})" if summary.paused else ""),
        highlight=False,
    )
    if summary.chain_nonces is not None:
        console.print(
            f"chain: latest {summary.chain_nonces.latest} pending {summary.chain_nonces.pending}",
            highlight=False,
        )
    if summary.nonce_behind is not None:
        console.print(
            f"attention: the chain's nonce {summary.nonce_behind.pending} is behind ours; "
            "not lowered (set-nonce with a reason if it is right)",
            highlight=False,
        )
    for line in summary.attention:
        console.print(f"- {line}", highlight=False, markup=False)


@wallet_app.command("status")
def status(wallet_id: WalletIdArg, as_json: JsonOpt = False) -> None:
    """Next nonce, in flight, queued, the chain's nonces and the latest attention lines."""

    async def go() -> None:
        handle = (await _client()).get_workflow_handle(wallet_id)
        try:
            summary = await handle.query(SUMMARY_QUERY, result_type=WalletSummary)
        except RPCError as exc:
            raise CliError(f"wallet {wallet_id}: {exc.message}") from None
        _print(summary, as_json)

    run_async(go())


@wallet_app.command("set-nonce")
def set_nonce(
    wallet_id: WalletIdArg,
    nonce: Annotated[int, typer.Option(help="the next nonce to hand out")],
    reason: Annotated[str, typer.Option(help="why (kept in the entity's attention log)")],
    as_json: JsonOpt = False,
) -> None:
    """Set the next nonce (the only way it ever goes down)."""
    try:
        request = SetNonceRequest(nonce=nonce, reason=reason)
    except ValidationError as exc:
        fail(describe(exc))

    async def go() -> None:
        handle = (await _client()).get_workflow_handle(wallet_id)
        try:
            summary = await handle.execute_update(
                SET_NONCE_UPDATE, request, result_type=WalletSummary
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise CliError(f"set-nonce refused: {getattr(cause, 'message', cause)}") from None
        except RPCError as exc:
            raise CliError(f"wallet {wallet_id}: {exc.message}") from None
        _print(summary, as_json)

    run_async(go())
