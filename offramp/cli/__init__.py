"""`offramp`: the command line for wallet backends, operators and engineers."""

from __future__ import annotations

import sys

from offramp.cli import bench, codec, demo, orders, sim, stack, views, wallet, webhooks
from offramp.cli.app import app
from offramp.config import ConfigError
from offramp.logs import configure_logging, log_settings

__all__ = [
    "app",
    "bench",
    "codec",
    "demo",
    "main",
    "orders",
    "sim",
    "stack",
    "views",
    "wallet",
    "webhooks",
]


def main() -> None:
    try:
        # OFFRAMP_LOG_LEVEL, OFFRAMP_LOG_FORMAT as for the worker; WARNING by default, so a
        # command's own output is not mixed with library INFO lines.
        configure_logging(log_settings(default_level="WARNING"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app()
