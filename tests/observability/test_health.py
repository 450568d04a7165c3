"""The worker's health endpoint: 200 while it polls and reaches Temporal, 503 once the Temporal
server is gone (a private dev server, stopped by the test), 200 again when it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.devstack.temporal_server import dev_server_process
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.observability.health import HEALTH_PATH


def health_until(url: str, status: int, limit: float = 90.0) -> dict[str, str]:
    """The health answer once it has `status` (bounded)."""
    deadline = time.monotonic() + limit
    seen: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=10)
            seen = (response.status_code, response.text)
            if response.status_code == status:
                body: dict[str, str] = response.json()
                return body
        except httpx.TransportError as exc:
            seen = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered {status} within {limit}s; last: {seen!r}")


def start_server(port: int, tmp_path: Path) -> ManagedProcess:
    proc = dev_server_process(
        port, free_port(), tmp_path / "temporal.sqlite", tmp_path / "temporal.log"
    ).start()
    proc.wait_for_port(port, 60)
    return proc


def test_health_turns_unhealthy_when_temporal_is_stopped(tmp_path: Path) -> None:
    temporal_port, health_port = free_port(), free_port()
    url = f"http://127.0.0.1:{health_port}{HEALTH_PATH}"
    server = start_server(temporal_port, tmp_path)
    worker: ManagedProcess | None = None
    try:
        worker = worker_process(
            {
                "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
                "TEMPORAL_NAMESPACE": "default",
                "OFFRAMP_WORKER_ROLE": "workflows",  # needs no chain: starts fast
                "OFFRAMP_HEALTH_ADDRESS": f"127.0.0.1:{health_port}",
            },
            tmp_path / "worker.log",
        ).start()
        wait_worker_ready(worker)
        worker.wait_for_log(f"health on {url}", 10)
        assert health_until(url, 200)["status"] == "ok"

        server.stop()
        down = health_until(url, 503)
        assert down["status"] == "unhealthy"
        assert down["reason"].startswith("cannot reach Temporal"), down

        server = start_server(temporal_port, tmp_path)  # same port and database
        assert health_until(url, 200)["status"] == "ok"
        assert worker.stop(timeout=60, sig=signal.SIGTERM) == 0, worker.log_tail()
    finally:
        if worker is not None:
            worker.kill()
        server.stop()


def test_a_bad_health_address_stops_the_worker_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    env |= {"OFFRAMP_WORKER_ROLE": "workflows", "OFFRAMP_HEALTH_ADDRESS": "health"}
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
    assert "OFFRAMP_HEALTH_ADDRESS: 'health' is not host:port" in done.stderr
