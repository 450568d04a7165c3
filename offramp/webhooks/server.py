"""Running the receiver: Temporal client, wake tasks, HTTP server; stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from typing import Final

from aiohttp import web
from pydantic import SecretStr

from offramp.config import ConfigError
from offramp.logs import REDACTOR, configure_logging
from offramp.temporal_client import connect
from offramp.webhooks.app import Receiver, route_path
from offramp.webhooks.config import WebhookSettings, load_webhook_settings
from offramp.webhooks.wake import Waker, temporal_signaller

log = logging.getLogger("offramp.webhooks")

# Printed (with " on http://host:port") once the receiver listens.
READY_MESSAGE: Final = "webhook receiver ready"


def build_receiver(
    settings: WebhookSettings, secrets: dict[str, SecretStr], waker: Waker
) -> Receiver:
    # Second line of defence: a secret that reached a log line anyway is redacted there.
    REDACTOR.add(secret.get_secret_value() for secret in secrets.values())
    return Receiver(settings, secrets, waker)


async def serve(
    settings: WebhookSettings, stop: asyncio.Event, temporal_env: Mapping[str, str] | None = None
) -> None:
    secrets = settings.secrets()  # ConfigError before anything is started
    try:
        client = await connect(temporal_env)
    except RuntimeError as exc:
        raise ConfigError(f"cannot connect to Temporal (TEMPORAL_ADDRESS etc.): {exc}") from None
    waker = Waker(
        temporal_signaller(client),
        max_pending=settings.max_pending_wakes,
        concurrency=settings.wake_concurrency,
        order_gap_seconds=settings.order_gap_seconds,
    )
    receiver = build_receiver(settings, secrets, waker)
    waker.start()
    runner = web.AppRunner(receiver.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        routes = ", ".join(route_path(name) for name in receiver.providers)
        log.info("%s on http://%s:%d (%s)", READY_MESSAGE, host, port, routes)
        await stop.wait()
        log.info("stopping: no new requests, delivering queued wakes")
    finally:
        await runner.cleanup()
        await waker.stop()


async def _main(overrides: Mapping[str, object]) -> int:
    try:
        settings = load_webhook_settings(**overrides)
    except ConfigError as exc:
        print(f"offramp webhooks: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(settings, stop)
    except ConfigError as exc:
        print(f"offramp webhooks: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the host is not ours
        print(f"offramp webhooks: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def main(**overrides: object) -> int:
    """Settings from OFFRAMP_WEBHOOKS_* (overrides: e.g. host/port from the CLI)."""
    try:
        configure_logging()  # OFFRAMP_LOG_LEVEL, OFFRAMP_LOG_FORMAT (README "Logs")
    except ConfigError as exc:
        print(f"offramp webhooks: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_main(overrides))
