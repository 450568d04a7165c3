"""`offramp`: the command line for wallet backends, operators and engineers."""

from __future__ import annotations

from offramp.cli import demo, orders, sim, stack, wallet
from offramp.cli.app import app

__all__ = ["app", "demo", "main", "orders", "sim", "stack", "wallet"]


def main() -> None:
    app()
