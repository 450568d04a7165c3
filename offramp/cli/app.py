"""The Typer app and the one way commands report failure: one clear line, non-zero exit."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

app = typer.Typer(
    help="Off-ramp engine: SELL orders from a wallet backend to settled, exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """A failure to report as one line."""


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line on stderr."""
    try:
        return asyncio.run(coro)
    except CliError as exc:
        fail(str(exc))
