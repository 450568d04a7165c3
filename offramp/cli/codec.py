"""`offramp codec-server`: payloads decrypted for the Web UI (README "Encrypted payloads")."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
import uvicorn

from offramp.cli.app import CliError, app, run_async
from offramp.codec import AesGcmCodec, load_key_ring
from offramp.codec.server import build_codec_app
from offramp.config import ConfigError
from offramp.logs import REDACTOR

READY_MESSAGE = "codec server listening"
DEFAULT_UI_ORIGIN = "http://localhost:8233"  # `temporal server start-dev`'s Web UI


@app.command("codec-server")
def codec_server(
    token: Annotated[
        str,
        typer.Option(
            envvar="OFFRAMP_CODEC_SERVER_TOKEN",
            help="bearer token every request must carry (prefer the variable: argv is visible)",
            show_default=False,
        ),
    ],
    port: Annotated[int, typer.Option(help="port to listen on (0: any free one)")] = 8888,
    host: Annotated[str, typer.Option(help="interface; keep it local or behind TLS")] = "127.0.0.1",
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="the Web UI's origin, allowed by CORS (repeatable)"),
    ] = None,
) -> None:
    """Serve /encode and /decode with the keys of OFFRAMP_CODEC_KEYS (or _FILE) for the Web UI."""
    try:
        key_ring = load_key_ring()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if key_ring is None:
        raise CliError("encryption is off: set OFFRAMP_CODEC_KEYS or OFFRAMP_CODEC_KEYS_FILE")
    if len(token) < 16:
        raise typer.BadParameter("--token: use at least 16 characters")
    REDACTOR.add([token])  # a token in a request path never reaches a log line
    origins = cors_origin or [DEFAULT_UI_ORIGIN]
    codec_app = build_codec_app(AesGcmCodec(key_ring), token, origins)
    # No access log: a UI without SSO sends the token in the path.
    config = uvicorn.Config(
        codec_app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    run_async(_serve(uvicorn.Server(config), host, key_ring.active_id, origins))


async def _serve(server: uvicorn.Server, host: str, active_id: str, origins: list[str]) -> None:
    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(
            f"{READY_MESSAGE} on http://{host}:{bound} (active key {active_id}, "
            f"CORS {', '.join(origins)})",
            flush=True,
        )

    ready = asyncio.create_task(announce())
    try:
        await server.serve()
    finally:
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ready
