"""`python -m worker` as operators run it: configuration from the environment, clear
failures, a worker that cannot pay refuses to start (or runs workflow tasks only, in its explicit
role), graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import HOT_WALLET_KEY, LocalChain
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from tests.chain.support import payment_request


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
        ({"OFFRAMP_WORKER_ROLE": "payments"}, "OFFRAMP_WORKER_ROLE"),
        ({"OFFRAMP_WORKER_MAX_CACHED_WORKFLOWS": "-1"}, "OFFRAMP_WORKER_MAX_CACHED_WORKFLOWS"),
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


# A chain whose RPC is never reached: the refusals below come before any network call.
UNREACHABLE_CHAINS = json.dumps(
    {
        "anvil": {
            "chain_id": 31337,
            "rpc_url": "http://127.0.0.1:9",
            "hot_wallet": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "max_fee_per_gas_cap_wei": 10**12,
            "assets": {
                "ETH": {"symbol": "ETH", "decimals": 18, "per_order_cap": 1, "daily_cap": 2}
            },
        }
    }
)
NO_CHAIN = "no chain configured (OFFRAMP_CHAINS or OFFRAMP_CHAINS_FILE)"
NO_SIGNER = "no hot-wallet signer (OFFRAMP_HOT_WALLET_PRIVATE_KEY, "


@pytest.mark.parametrize(
    ("env", "named", "not_named"),
    [
        ({}, [NO_CHAIN, NO_SIGNER], []),
        ({"OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY}, [NO_CHAIN], [NO_SIGNER]),
        ({"OFFRAMP_CHAINS": UNREACHABLE_CHAINS}, [NO_SIGNER], [NO_CHAIN]),
    ],
    ids=["nothing", "no-chains", "no-signer"],
)
def test_a_worker_that_cannot_pay_refuses_to_start(
    env: dict[str, str], named: list[str], not_named: list[str]
) -> None:
    result = run_worker_once(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback, no log before it
    for text in named:
        assert text in lines[0]
    for text in not_named:
        assert text not in lines[0]
    assert "OFFRAMP_WORKER_ROLE=workflows" in lines[0]
    assert "worker ready" not in result.stdout + result.stderr
    assert HOT_WALLET_KEY[2:] not in result.stdout + result.stderr


def test_a_signer_that_is_no_configured_hot_wallet_refuses_to_start() -> None:
    other_key = "0x" + "11" * 32  # not the hot wallet of any configured chain
    result = run_worker_once(
        {"OFFRAMP_CHAINS": UNREACHABLE_CHAINS, "OFFRAMP_HOT_WALLET_PRIVATE_KEY": other_key}
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("offramp worker: cannot pay on any configured chain")
    assert "the signer holds no key for hot wallet" in last
    assert other_key[2:] not in result.stdout + result.stderr


def test_unreachable_temporal_fails_with_a_clear_message(
    local_chain: LocalChain, tmp_path: Path
) -> None:
    chains_file = local_chain.write_chains_file(tmp_path / "chains.json")
    result = run_worker_once(
        {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "OFFRAMP_CHAINS_FILE": str(chains_file),
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        }
    )
    assert result.returncode == 2
    assert "cannot connect to Temporal" in result.stderr


async def pollers(
    client: Client,
    task_queue: str,
    kind: TaskQueueType.ValueType = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
) -> int:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
    )
    return len(response.pollers)


async def wait_until_polled(client: Client, task_queue: str, limit: float = 60.0) -> None:
    """The server lists a poller once its first poll arrived, which may be a while after "worker
    ready" on a loaded machine: wait for it, with a bound."""
    deadline = time.monotonic() + limit
    while await pollers(client, task_queue) < 1:
        assert time.monotonic() < deadline, f"no workflow poller on {task_queue} after {limit}s"
        await asyncio.sleep(0.2)


def temporal_env(env: WorkflowEnvironment) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
    }


async def test_worker_serves_the_task_queue_and_stops_on_sigterm(
    dev_env: WorkflowEnvironment, local_chain: LocalChain, task_queue: str, tmp_path: Path
) -> None:
    chains_file = local_chain.write_chains_file(tmp_path / "chains.json")
    proc = worker_process(
        {
            **temporal_env(dev_env),
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_CHAINS_FILE": str(chains_file),
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        await wait_until_polled(dev_env.client, task_queue)
        assert proc.stop(timeout=30, sig=signal.SIGTERM) == 0
        assert "stopping" in proc.log_since_start().decode()
        assert HOT_WALLET_KEY[2:] not in proc.log_since_start().decode()
    finally:
        proc.kill()


async def _first_activity_scheduled(client: Client, workflow_id: str, limit: float = 60.0) -> Any:
    deadline = time.monotonic() + limit
    while True:
        description = await client.get_workflow_handle(workflow_id).describe()
        pending = description.raw_description.pending_activities
        if pending:
            return pending[0]
        assert time.monotonic() < deadline, f"{workflow_id} scheduled no activity in {limit}s"
        await asyncio.sleep(0.2)


async def test_the_workflows_role_runs_workflow_tasks_and_never_an_activity(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    # No chain, no signer, no provider settings: allowed in this role only.
    proc: ManagedProcess = worker_process(
        {
            **temporal_env(dev_env),
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_WORKER_ROLE": "workflows",
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        proc.wait_for_log("role workflows", 30)  # the rest of the ready line
        await wait_until_polled(dev_env.client, task_queue)
        # A payment on its queue: the workflow runs here (its first task schedules the
        # preflight), the activity is never taken (this worker polls for none).
        workflow_id = f"payment-role-{uuid.uuid4().hex[:8]}"
        await dev_env.client.start_workflow(
            "Payment",
            payment_request(workflow_id, "0x" + "22" * 20, "ETH", "0.1"),
            id=workflow_id,
            task_queue=task_queue,
        )
        activity = await _first_activity_scheduled(dev_env.client, workflow_id)
        assert activity.activity_type.name == "payment_preflight", activity
        assert activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, activity
        assert activity.attempt == 1 and not activity.last_worker_identity, activity
        kind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        assert await pollers(dev_env.client, task_queue, kind) == 0
        await dev_env.client.get_workflow_handle(workflow_id).terminate("test done")
        rc = proc.stop(timeout=60, sig=signal.SIGTERM)
        assert rc == 0, f"exit {rc}:\n{proc.log_since_start().decode()[-3000:]}"
    finally:
        proc.kill()
