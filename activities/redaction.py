"""Redaction of activity failures: no RPC URL (or a part of one) leaves an activity that talks to
a chain. Temporal records failure messages, causes and tracebacks in history, so every failure is
scrubbed by the worker's chain runtime and re-raised without a chained cause."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from temporalio.exceptions import ApplicationError


class _Redactor(Protocol):
    def redact(self, text: str) -> str: ...


class HasRuntime(Protocol):
    @property
    def runtime(self) -> _Redactor: ...


S = TypeVar("S", bound=HasRuntime)
P = ParamSpec("P")
R = TypeVar("R")


def redacted(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """Every failure message of `fn` scrubbed by `self.runtime.redact`; an unexpected exception
    becomes an ApplicationError of its type name with no chained cause."""

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(self, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except ApplicationError as exc:
            clean = self.runtime.redact(exc.message)
            if clean == exc.message and exc.__cause__ is None:
                raise
            raise ApplicationError(
                clean,
                type=exc.type,
                non_retryable=exc.non_retryable,
                next_retry_delay=exc.next_retry_delay,
                category=exc.category,
            ) from None
        except Exception as exc:
            raise ApplicationError(
                self.runtime.redact(f"{type(exc).__name__}: {exc}"), type=type(exc).__name__
            ) from None

    return wrapper
