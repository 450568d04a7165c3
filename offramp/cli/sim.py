"""`offramp sim`: run the Kado simulator and create orders in it (local stack and demos)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from offramp.cli.app import CliError, app, console, run_async
from offramp.cli.output import JsonOpt, print_json

sim_app = typer.Typer(help="The Kado simulator: run it, create orders in it.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

UrlOpt = Annotated[str, typer.Option("--url", envvar="OFFRAMP_KADO_BASE_URL")]


@sim_app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def serve(ctx: typer.Context) -> None:
    """Run the simulator in the foreground. Options are the simulator's own: --port, --rpc-url,
    --token-address, --data-file, --settlement-delay, ... (`offramp sim serve --help`)."""
    from offramp.simulator.__main__ import main as simulator_main

    raise typer.Exit(simulator_main(list(ctx.args)))


@sim_app.command("create-order")
def create_order(
    url: UrlOpt = "http://127.0.0.1:8780",
    amount: Annotated[str, typer.Option(help="whole units, e.g. 25.5")] = "10",
    asset: Annotated[str, typer.Option(help="USDC or ETH on the local chain")] = "USDC",
    user_ref: Annotated[str, typer.Option(help="the order's userRef")] = "user-42",
    order_type: Annotated[str, typer.Option(help="sell or buy")] = "sell",
    scenario: Annotated[
        str, typer.Option(help="normal, stuck_unknown, provider_failure or slow_settlement")
    ] = "normal",
    ready_after: Annotated[float, typer.Option(help="seconds until it is ready")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Create a SELL order in the simulator; prints its id and deposit address."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise typer.BadParameter(f"amount: {amount!r} is not a decimal number") from None

    async def go() -> None:
        import httpx

        from offramp.simulator.admin import SimulatorAdmin, SimulatorAdminError

        try:
            async with SimulatorAdmin(url) as admin:
                created = await admin.create_order(
                    amount=value,
                    asset=asset,
                    user_ref=user_ref,
                    order_type=order_type,
                    scenario=scenario,
                    ready_after_seconds=ready_after,
                )
        except SimulatorAdminError as exc:
            raise CliError(f"simulator refused the order: {exc}") from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the simulator at {url}: {exc}") from None
        if as_json:
            print_json({"order_id": created.order_id, "deposit_address": created.deposit_address})
            return
        console.print(f"order {created.order_id} deposit {created.deposit_address}", soft_wrap=True)

    run_async(go())
