"""The Typer app and the one way commands report failure: one clear line, non-zero exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import (
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from offramp.config import ConfigError
from offramp.observability.tracing import shutdown_tracing

T = TypeVar("T")


class _OneLineErrors(typer.Typer):
    """Usage errors (a missing option, a bad value) as one `error: ...` line, exit code 2,
    instead of Typer's multi-line panel; and an exit that cannot crash after the command."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.pop("standalone_mode", True):
            return super().__call__(*args, standalone_mode=False, **kwargs)
        code = self._run(*args, **kwargs)
        # The Temporal client's Rust threads can outlive the event loop and abort the interpreter
        # while it finalizes ("PyGILState_Release: thread state ... must be current", SIGABRT,
        # temporalio/sdk-python#300), turning a finished command's exit code into 134. The
        # command is done and its own `finally` blocks have run: leave without finalizing.
        shutdown_tracing()  # flush spans (OFFRAMP_TRACING): os._exit runs no atexit hook
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)

    def _run(self, *args: Any, **kwargs: Any) -> int:
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:
            # Typer's (vendored click) usage errors; with no arguments the help is shown already.
            if type(exc).__name__ != "NoArgsIsHelpError":
                ctx = getattr(exc, "ctx", None)
                command = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                _print_error(f"{exc.format_message()}{command}")
            return exc.exit_code
        except typer.Abort:
            _print_error("aborted")
            return 1
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            _print_error(str(exc.code))
            return 1
        return code if isinstance(code, int) else 0


app = _OneLineErrors(
    help="Off-ramp engine: SELL orders from a wallet backend to settled, exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """A failure to report as one line."""


def _print_error(message: str) -> None:
    one_line = " ".join(message.split())
    err_console.print(f"error: {one_line}", highlight=False, markup=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line on stderr."""
    try:
        return asyncio.run(coro)
    except (CliError, ConfigError) as exc:  # ConfigError: e.g. bad OFFRAMP_CODEC_KEYS
        fail(str(exc))
    except RPCError as exc:
        fail(f"Temporal: {exc.message}")
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        fail(f"query failed: {exc}")
    except WorkflowFailureError as exc:
        fail(f"workflow failed: {getattr(exc.cause, 'message', exc.cause)}")
