"""`offramp`: the command line for wallet backends, operators and engineers."""

from __future__ import annotations

from offramp.cli import bench, demo, orders, sim, stack
from offramp.cli.app import app

__all__ = ["app", "bench", "demo", "main", "orders", "sim", "stack"]


def main() -> None:
    app()
