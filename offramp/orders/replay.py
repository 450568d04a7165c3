"""Replaying histories against the current workflow code (is a change safe to deploy?)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.client import WorkflowHistory as _History
from temporalio.worker import Replayer

from offramp.converter import DATA_CONVERTER


def replayer() -> Replayer:
    from worker import registry

    return Replayer(workflows=list(registry.workflows()), data_converter=DATA_CONVERTER)


def load_history(path: Path) -> _History:
    text = path.read_text()
    workflow_id = path.stem
    return _History.from_json(workflow_id, text)


async def replay(history: _History) -> str | None:
    """None when the history replays; otherwise the nondeterminism (or other) error."""
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        return f"{type(result.replay_failure).__name__}: {result.replay_failure}"
    return None


async def replay_history_file(path: Path) -> str | None:
    return await replay(load_history(path))


async def replay_live(client: Client, workflow_id: str) -> str | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return await replay(history)
