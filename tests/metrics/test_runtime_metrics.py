"""The worker serves the SDK runtime's Prometheus metrics on OFFRAMP_METRICS_ADDRESS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from offramp.config import ConfigError
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.metrics import metrics_address


def scrape_until(url: str, needle: str, limit: float = 60.0) -> str:
    """The metrics text once it shows `needle` (the core publishes some metrics lazily)."""
    deadline = time.monotonic() + limit
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(url, timeout=5).text
        except httpx.TransportError:
            text = ""
        if needle in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not in {url} within {limit}s:\n{text[-2000:]}")


async def test_the_worker_serves_sdk_metrics(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    port = free_port()
    proc: ManagedProcess = worker_process(
        {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": dev_env.client.namespace,
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_WORKER_ROLE": "workflows",
            "OFFRAMP_METRICS_ADDRESS": f"127.0.0.1:{port}",
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        proc.wait_for_log(f"metrics on http://127.0.0.1:{port}/metrics", 30)
        text = scrape_until(f"http://127.0.0.1:{port}/metrics", "temporal_num_pollers")
        # Pollers of this worker's task queue, tagged so a dashboard can tell workers apart.
        pollers = [
            line
            for line in text.splitlines()
            if line.startswith("temporal_num_pollers{") and f'task_queue="{task_queue}"' in line
        ]
        assert pollers and any(float(line.rsplit(" ", 1)[1]) > 0 for line in pollers), text
        assert 'service="offramp-worker"' in pollers[0]
        rc = proc.stop(timeout=60, sig=signal.SIGTERM)
        assert rc == 0, proc.log_tail()
    finally:
        proc.kill()


def test_a_bad_metrics_address_stops_the_worker_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    env |= {"OFFRAMP_WORKER_ROLE": "workflows", "OFFRAMP_METRICS_ADDRESS": "9464"}
    done = subprocess.run(
        [sys.executable, "-m", "worker"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "OFFRAMP_METRICS_ADDRESS: '9464' is not host:port" in done.stderr


def test_metrics_are_off_unless_configured() -> None:
    assert metrics_address({}) is None
    assert metrics_address({"OFFRAMP_METRICS_ADDRESS": "0.0.0.0:9464"}) == "0.0.0.0:9464"
    with pytest.raises(ConfigError, match="host:port"):
        metrics_address({"OFFRAMP_METRICS_ADDRESS": "localhost:99999"})
