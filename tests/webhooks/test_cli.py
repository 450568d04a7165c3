"""`offramp webhooks` as its own process: refuses to start without a secret, serves its routes,
stops on SIGTERM, never logs the secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.webhooks.signatures import sign_kado
from offramp.webhooks.wake import WakeCounts

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}


def test_without_a_secret_it_refuses_to_start() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "offramp", "webhooks", "--port", "0"],
        env={**CLEAN_ENV, "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 2
    assert "OFFRAMP_WEBHOOKS_KADO_SECRET_FILE" in done.stderr


async def test_serves_and_stops_on_sigterm(tmp_path: Path, dev_env: WorkflowEnvironment) -> None:
    secret = "cli-webhook-secret-never-logged"
    secret_file = tmp_path / "kado-secret"
    secret_file.write_text(secret + "\n")
    port = free_port()
    env = {
        **CLEAN_ENV,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "OFFRAMP_WEBHOOKS_KADO_SECRET_FILE": str(secret_file),
        "OFFRAMP_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "offramp", "webhooks", "--port", str(port)]
    proc = ManagedProcess("webhooks", argv, tmp_path / "webhooks.log", env, PROJECT_ROOT).start()
    try:
        proc.wait_for_log("webhook receiver ready", timeout=120)
        base = f"http://127.0.0.1:{port}"
        body = json.dumps({"id": "evt-cli", "data": {"id": "no-such-order"}}).encode()
        async with httpx.AsyncClient(timeout=30) as http:
            health = (await http.get(f"{base}/health")).json()
            assert health["routes"] == ["/webhooks/kado"]  # no KidaPay secret: no route
            headers = sign_kado(body, SecretStr(secret), int(time.time()))
            reply = await http.post(f"{base}/webhooks/kado", content=body, headers=headers)
            assert reply.json() == {"status": "accepted"}
            forged = sign_kado(body, SecretStr("guess"), int(time.time()))
            refused = await http.post(f"{base}/webhooks/kado", content=body, headers=forged)
            assert refused.status_code == 401
            for _ in range(300):
                wakes = WakeCounts(**(await http.get(f"{base}/health")).json()["wakes"])
                if wakes.unknown:
                    break
                await asyncio.sleep(0.1)
        assert (wakes.unknown, wakes.sent) == (1, 0)
        assert proc.stop(timeout=60, sig=signal.SIGTERM) == 0  # a clean stop, not a kill
    finally:
        proc.stop()
    log = (tmp_path / "webhooks.log").read_text()
    assert "stopping" in log and "no open workflow" in log
    assert secret not in log
