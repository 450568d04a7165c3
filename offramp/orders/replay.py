"""Replaying histories against the current workflow code (is a change safe to deploy?)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from google.protobuf.json_format import ParseError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.client import WorkflowHistory as _History
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from offramp.converter import data_converter


class HistoryError(Exception):
    """The history cannot be replayed at all: unreadable or malformed."""


@cache
def _quiet_runtime() -> Runtime:
    # The replayer's failure is reported once, by the caller: the core's own WARN log of the same
    # failure (a multi-line dump on stderr) is left out.
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )


def replayer() -> Replayer:
    from worker import registry

    return Replayer(
        workflows=list(registry.workflows()),
        data_converter=data_converter(),  # decrypts with OFFRAMP_CODEC_KEYS when set
        runtime=_quiet_runtime(),
    )


def load_history(path: Path) -> _History:
    try:
        text = path.read_text()
    except OSError as exc:
        raise HistoryError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        history = _History.from_json(path.stem, text)
    except (ValueError, TypeError, KeyError, ParseError) as exc:
        raise HistoryError(f"not a JSON workflow history: {exc}") from None
    # The workflow id recorded in the history, not the file's name: ids the workflow derives from
    # its own (a hot-wallet fill's child id) must come out as recorded. Servers before 1.27 did
    # not record it: the file's name stands in.
    started = history.events[0] if history.events else None
    if started is not None and started.HasField("workflow_execution_started_event_attributes"):
        recorded = started.workflow_execution_started_event_attributes.workflow_id
        if recorded:
            return _History(recorded, history.events)
    return history


def workflow_type_of(history: _History) -> str:
    """The recorded workflow type ("" when the history does not begin with its start)."""
    if not history.events:
        return ""
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def _check_shape(history: _History) -> None:
    # The replayer waits forever on a history without a workflow task (and cannot be cancelled).
    events = history.events
    if not events or events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        raise HistoryError("the history does not begin with WorkflowExecutionStarted")
    if not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED for e in events):
        raise HistoryError("the history has no workflow task to replay")


_FAILURE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _describe(failure: Exception) -> str:
    # The core wraps the interesting part in a debug dump: `Failure { failure: Some(Failure {
    # message: "[TMPRL1100] Nondeterminism error: ...", ... }) }`.
    text = str(failure)
    found = _FAILURE_MESSAGE.search(text)
    return f"{type(failure).__name__}: {found.group(1) if found else text}"


async def replay(history: _History) -> str | None:
    """None when the history replays; otherwise the nondeterminism (or other) error.

    Raises HistoryError when the history cannot be replayed at all.
    """
    _check_shape(history)
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        return _describe(result.replay_failure)
    return None


async def replay_history_file(path: Path) -> str | None:
    return await replay(load_history(path))


async def replay_live(client: Client, workflow_id: str) -> str | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return await replay(history)
