"""`offramp start` with tracing on sends its StartWorkflow span to the OTLP endpoint (the CLI is
a client like the backend's; no worker is needed to start an order)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import workflow_id_for
from tests.cli.conftest import base_env, run_command, temporal_env
from tests.observability.collector import ReceivedSpan, otlp_collector


async def test_the_cli_start_is_traced(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    order_id = f"trace{uuid.uuid4().hex[:12]}"
    with otlp_collector() as collector:
        env = base_env() | temporal_env(dev_env)
        env |= {
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_TRACING": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        }
        done = await run_command(
            [
                sys.executable,
                "-m",
                "offramp",
                "start",
                order_id,
                "--max-amount",
                "10",
                "--user-ref",
                "u1",
            ],
            env,
            60,
        )
        assert done.code == 0, done.err
        try:
            # Flushed when the CLI exits; the receiver may still be storing it.
            deadline = time.monotonic() + 10
            spans: list[ReceivedSpan] = []
            while not spans and time.monotonic() < deadline:
                spans = [s for s in collector.snapshot() if s.name.startswith("StartWorkflow:")]
                await asyncio.sleep(0.1)
        finally:
            await dev_env.client.get_workflow_handle(workflow_id_for(order_id)).terminate()
    assert [(s.name, s.service) for s in spans] == [("StartWorkflow:SellOrderWorkflow", "offramp")]
    assert spans[0].attributes["temporalWorkflowID"] == workflow_id_for(order_id)
