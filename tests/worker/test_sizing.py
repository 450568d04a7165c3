"""The worker's cache, concurrency and sticky timeout come from the environment and reach the
SDK worker; the `workflows` role registers no activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import Client

from offramp.config import load_settings
from worker.main import build_worker, create_resources


async def test_sizing_settings_reach_the_worker(
    dev_client: Client, clean_env: None, monkeypatch: pytest.MonkeyPatch, task_queue: str
) -> None:
    monkeypatch.setenv("OFFRAMP_WORKER_ROLE", "workflows")
    monkeypatch.setenv("OFFRAMP_WORKER_MAX_CACHED_WORKFLOWS", "1234")
    monkeypatch.setenv("OFFRAMP_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "7")
    monkeypatch.setenv("OFFRAMP_WORKER_MAX_CONCURRENT_ACTIVITIES", "77")
    monkeypatch.setenv("OFFRAMP_WORKER_STICKY_SCHEDULE_TO_START_TIMEOUT_SECONDS", "45")
    settings = load_settings(task_queue=task_queue)
    resources = await create_resources(settings)
    config = build_worker(dev_client, settings, resources).config()
    assert config["max_cached_workflows"] == 1234
    assert config.get("max_concurrent_workflow_tasks") == 7
    assert config.get("max_concurrent_activities") == 77
    assert config["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=45)
    assert not config.get("activities")  # the workflows role polls for no activity
    assert {w.__name__ for w in config.get("workflows", [])} >= {
        "SellOrderWorkflow",
        "PaymentWorkflow",
    }


def test_defaults_are_sized_for_thousands_of_open_workflows(clean_env: None) -> None:
    settings = load_settings()
    assert settings.worker_role == "all"
    # A few thousand orders x (SellOrder + Payment) + entities stay cached.
    assert settings.worker_max_cached_workflows >= 6_000
    assert settings.worker_max_concurrent_activities >= 500
    assert settings.worker_sticky_schedule_to_start_timeout_seconds > 10
