"""With a worker subprocess up (metrics endpoint and OTLP tracing on), orders move the order
metrics on its Prometheus endpoint, and one order's trace reaches an OTLP/HTTP receiver: the
start, the workflow, its activities, the payment child, provider HTTP calls and JSON-RPC calls."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from offramp.converter import DATA_CONVERTER
from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.devstack.processes import free_port
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.observability import order_metrics as m
from offramp.orders.models import RejectReason, SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import SellChain, create_sim_order, engine_settings, start_order, wait_stage
from tests.observability.collector import Collector, ReceivedSpan, otlp_collector
from tests.observability.prometheus import sample, scrape_until


def worker_env(sc: SellChain, dev_env: WorkflowEnvironment, task_queue: str) -> dict[str, str]:
    settings = engine_settings(sc, task_queue)
    return {
        "OFFRAMP_TASK_QUEUE": task_queue,
        "OFFRAMP_CHAINS": json.dumps(
            {name: c.model_dump(mode="json") for name, c in settings.chains.items()}
        ),
        "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        "OFFRAMP_KADO_BASE_URL": sc.simulator_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
    }


async def tracing_client(dev_env: WorkflowEnvironment, collector: Collector) -> Client:
    """A starter like the wallet backend's, tracing its starts into the same receiver (its own
    provider: nothing global changes in the test process)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "test-starter"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.endpoint}/v1/traces"))
    )
    return await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=DATA_CONVERTER,
        interceptors=[TracingInterceptor(provider.get_tracer("tests"))],
    )


async def test_orders_move_the_metrics_and_one_order_is_traced(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    tq = {"task_queue": task_queue}
    with otlp_collector() as collector:
        env = worker_env(sc, dev_env, task_queue) | {
            "OFFRAMP_METRICS_ADDRESS": f"127.0.0.1:{port}",
            "OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS": "0.5",
            "OFFRAMP_TRACING": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        proc = worker_process(env, tmp_path / "worker.log").start()
        try:
            wait_worker_ready(proc)
            proc.wait_for_log("tracing on", 10)
            client = await tracing_client(dev_env, collector)
            settle_id = await create_sim_order(admin)
            buy_id = await create_sim_order(admin, order_type="buy")
            stuck_id = await create_sim_order(admin, scenario="stuck_unknown")
            settling = await start_order(client, task_queue, settle_id)
            rejected = await start_order(client, task_queue, buy_id)
            stuck = await start_order(
                client,
                task_queue,
                stuck_id,
                unknown_alert_after=timedelta(seconds=1),
                settlement_timeout=timedelta(hours=1),
            )
            async with asyncio.timeout(180):
                settled, refused = await asyncio.gather(settling.result(), rejected.result())
            assert settled.outcome is Stage.SETTLED, settled.reason
            assert refused.reject_reason is RejectReason.NOT_A_SELL_ORDER
            flagged: SellOrderState = await wait_for_attention(stuck)
            assert flagged.stage is Stage.TRACKING

            text = await asyncio.to_thread(
                scrape_until,
                url,
                lambda t: sample(t, m.ORDERS_NEEDING_ATTENTION, **tq) == 1,
                "one open order needing attention",
            )
            assert sample(text, m.ORDERS_RECEIVED, provider="kado", **tq) == 3
            assert sample(text, m.ORDERS_FINISHED, outcome="SETTLED", **tq) == 1
            assert sample(text, m.ORDERS_FINISHED, outcome="REJECTED", **tq) == 1
            assert sample(text, m.ORDERS_FINISHED, **tq) == 2  # the stuck one is still open
            assert sample(text, m.ORDER_STAGE_ENTERED, stage="FUNDING", **tq) == 2
            assert sample(text, m.ORDER_STAGE_ENTERED, stage="TRACKING", **tq) == 2
            assert sample(text, m.ORDER_STAGE_ENTERED, stage="REJECTED", **tq) == 1
            assert sample(text, f"{m.ORDER_SETTLE_TIME}_count", provider="kado", **tq) == 1
            assert sample(text, f"{m.ORDER_SETTLE_TIME}_bucket", le="30", **tq) == 1
            assert sample(text, m.ORDER_ATTENTION, **tq) == 1
            assert sample(text, m.PAYMENTS_FINISHED, status="confirmed", asset="USDC", **tq) == 2
            assert sample(text, m.PROVIDER_CALLS, call="fetch_order", outcome="ok", **tq) >= 3
            assert sample(text, m.PROVIDER_CALLS, call="poll_order", outcome="ok", **tq) >= 2
            assert sample(text, f"{m.PROVIDER_CALL_LATENCY}_count", **tq) >= 5
            # No order id in any label.
            assert all(oid not in text for oid in (settle_id, buy_id, stuck_id))

            await stuck.terminate("test over")
            await asyncio.to_thread(
                scrape_until,
                url,
                lambda t: sample(t, m.ORDERS_NEEDING_ATTENTION, **tq) == 0,
                "no open order needing attention after the terminate",
            )
            assert proc.stop(timeout=60, sig=signal.SIGTERM) == 0, proc.log_tail()
        finally:
            proc.kill()
        assert_one_order_traced(collector.snapshot(), settling.id)


async def wait_for_attention(handle: WorkflowHandle[Any, Any]) -> SellOrderState:
    await wait_stage(handle, Stage.TRACKING)
    async with asyncio.timeout(60):
        while True:
            state: SellOrderState = await handle.query("state", result_type=SellOrderState)
            if state.needs_attention:
                return state
            await asyncio.sleep(0.2)


def assert_one_order_traced(spans: list[ReceivedSpan], workflow_id: str) -> None:
    starts = [
        s
        for s in spans
        if s.name == "StartWorkflow:SellOrderWorkflow"
        and s.attributes.get("temporalWorkflowID") == workflow_id
    ]
    assert len(starts) == 1, sorted({s.name for s in spans})
    trace = [s for s in spans if s.trace_id == starts[0].trace_id]
    names = {s.name for s in trace}
    worker_names = {s.name for s in trace if s.service == "offramp-worker"}
    expected = {
        "RunWorkflow:SellOrderWorkflow",
        "StartActivity:kado_fetch_order",
        "RunActivity:kado_fetch_order",
        "RunActivity:check_sell_order",
        "StartChildWorkflow:Payment",
        "RunWorkflow:Payment",
        "RunActivity:sign_and_broadcast",
        "RunActivity:await_transaction",
    }
    assert expected <= worker_names, sorted(names)
    by_id = {s.span_id: s for s in trace}
    # Provider HTTP calls (httpx) and chain JSON-RPC calls (aiohttp) inside activity runs.
    http = [s for s in trace if s.name == "GET" and s.parent_id in by_id]
    assert any(by_id[s.parent_id].name == "RunActivity:kado_fetch_order" for s in http), names
    rpc = [s for s in trace if s.name == "POST" and s.parent_id in by_id]
    assert any(by_id[s.parent_id].name == "RunActivity:sign_and_broadcast" for s in rpc), names
    for span in rpc:
        shown = [v for v in span.attributes.values() if isinstance(v, str) and "://" in v]
        assert all(v.count("/") == 2 for v in shown), shown  # scheme://host:port, no path
    everything = json.dumps([s.attributes for s in spans])
    assert HOT_WALLET_KEY not in everything and HOT_WALLET_KEY[2:] not in everything
