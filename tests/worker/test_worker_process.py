"""`python -m worker` as operators run it: configuration from the environment, clear failures,
graceful SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import HOT_WALLET_KEY, LocalChain
from offramp.devstack.processes import free_port
from offramp.devstack.worker_process import wait_worker_ready, worker_process


def run_worker_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run(
        [sys.executable, "-m", "worker"],
        env={**clean, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OFFRAMP_CHAINS": "{not json"}, "OFFRAMP_CHAINS"),
        ({"OFFRAMP_CHAINS": json.dumps({"anvil": {"chain_id": -1}})}, "OFFRAMP_CHAINS (anvil"),
        ({"OFFRAMP_CHAINS_FILE": "/nonexistent/chains.json"}, "chains file"),
        ({"OFFRAMP_TASK_QUEUE": ""}, "OFFRAMP_TASK_QUEUE"),
        ({"OFFRAMP_KADO_TIMEOUT_SECONDS": "-3"}, "OFFRAMP_KADO_TIMEOUT_SECONDS"),
    ],
)
def test_bad_configuration_fails_at_start_naming_the_setting(
    env: dict[str, str], named: str
) -> None:
    # A key is set too: whatever goes wrong, it must not be echoed.
    result = run_worker_once({**env, "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY})
    assert result.returncode == 2
    assert named in result.stderr
    assert HOT_WALLET_KEY[2:] not in result.stderr + result.stdout


def test_unreachable_temporal_fails_with_a_clear_message(local_chain: LocalChain) -> None:
    result = run_worker_once({"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 2
    assert "cannot connect to Temporal" in result.stderr


async def pollers(client: Client, task_queue: str) -> int:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers)


async def test_worker_serves_the_task_queue_and_stops_on_sigterm(
    dev_env: WorkflowEnvironment, local_chain: LocalChain, task_queue: str, tmp_path: Path
) -> None:
    chains_file = local_chain.write_chains_file(tmp_path / "chains.json")
    proc = worker_process(
        {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": dev_env.client.namespace,
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_CHAINS_FILE": str(chains_file),
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        assert await pollers(dev_env.client, task_queue) >= 1
        assert proc.stop(timeout=30, sig=signal.SIGTERM) == 0
        assert "stopping" in proc.log_since_start().decode()
        assert HOT_WALLET_KEY[2:] not in proc.log_since_start().decode()
    finally:
        proc.kill()
