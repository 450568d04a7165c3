"""The Temporal dev server as tests and recorders start it: the pinned binary, a free port, the
engine's data converter, quiet logs, and optional dynamic config (lowered limits, an early
continue-as-new suggestion)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from offramp.converter import DATA_CONVERTER
from offramp.devstack import binaries
from offramp.devstack.processes import free_port


@asynccontextmanager
async def dev_server(
    dynamic_config: Mapping[str, int] | None = None,
    *,
    search_attributes: Sequence[SearchAttributeKey[Any]] = (),
) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server for the block's duration, always shut down."""
    extra_args: list[str] = []
    for key, value in (dynamic_config or {}).items():
        extra_args += ["--dynamic-config-value", f"{key}={value}"]
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=str(binaries.temporal_cli()),
        search_attributes=search_attributes,
        port=free_port(),
        dev_server_log_level="error",
        dev_server_extra_args=extra_args,
    )
    try:
        yield env
    finally:
        await env.shutdown()
