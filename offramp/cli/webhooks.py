"""`offramp webhooks`: the webhook receiver (README "Webhook receiver")."""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.cli.app import app


@app.command("webhooks")
def run_webhooks(
    host: Annotated[
        str | None, typer.Option(help="listen address (default OFFRAMP_WEBHOOKS_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="0 picks a free port (default OFFRAMP_WEBHOOKS_PORT)"),
    ] = None,
) -> None:
    """Receive provider webhooks, verify them and wake each order's workflow (poll_now).
    Secrets come from OFFRAMP_WEBHOOKS_<PROVIDER>_SECRET_FILE (or _SECRET), never from options;
    Temporal from TEMPORAL_* as for the worker. Runs until Ctrl-C or SIGTERM."""
    from offramp.webhooks.server import main as webhooks_main

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    raise typer.Exit(webhooks_main(**overrides))
