"""What the worker hosts. Every workflow and activity the engine uses is listed here, once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from worker.resources import WorkerResources


def workflows() -> Sequence[type]:
    """Workflow classes the worker runs."""
    registered: list[type] = []
    return registered


def activities(resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    """Activity callables, bound to the worker's shared resources (HTTP clients, chains, signer)."""
    del resources
    registered: list[Callable[..., Any]] = []
    return registered
