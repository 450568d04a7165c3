"""The worker process logs JSON lines by configuration and never a configured secret."""

from __future__ import annotations

import base64
import json
import os
import signal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from offramp.devstack.processes import ManagedProcess
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from worker.main import READY_MESSAGE

API_KEY = "not-a-real-widget-id-4f9a2c"


async def test_a_json_format_worker_writes_json_lines_without_secrets(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    codec_key = base64.b64encode(os.urandom(32)).decode()
    proc: ManagedProcess = worker_process(
        {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": dev_env.client.namespace,
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_WORKER_ROLE": "workflows",  # needs no chain: starts fast
            "OFFRAMP_LOG_FORMAT": "json",
            "OFFRAMP_LOG_LEVEL": "DEBUG",
            "OFFRAMP_KADO_WIDGET_ID": API_KEY,
            "OFFRAMP_CODEC_KEYS": f"k1:{codec_key}",  # the worker starts with encryption on
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        proc.wait_for_log("role workflows", 30)
        rc = proc.stop(timeout=60, sig=signal.SIGTERM)
    finally:
        proc.kill()
    text = proc.log_since_start().decode()
    assert rc == 0, text[-3000:]
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    ready = [r for r in records if r["message"].startswith(READY_MESSAGE)]
    assert len(ready) == 1 and ready[0]["logger"] == "offramp.worker", records
    assert {"time", "level", "logger", "message"} <= set(ready[0])
    assert API_KEY not in text and codec_key not in text
