"""The `offramp_orders_needing_attention` gauge: open sell orders of the worker's task queue
flagged NeedsAttention, from the server's visibility store (`count_workflows`), so it is right
whatever worker raised or cleared a flag and survives restarts (a counter could not be).

Each worker with a metrics endpoint sets it every `OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS`
(default 60): one visibility count per interval, not a billed action. Workers of one task queue
report the same value: aggregate with max() by task_queue, not sum().
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import MetricMeter

from offramp import search_attributes as sa
from offramp.config import ENV_PREFIX, ConfigError
from offramp.observability.order_metrics import ORDERS_NEEDING_ATTENTION
from offramp.orders.models import WORKFLOW_TYPE

GAUGE_INTERVAL_VAR = f"{ENV_PREFIX}METRICS_GAUGE_INTERVAL_SECONDS"


def attention_query(task_queue: str) -> str:
    return (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{task_queue}' AND {sa.NEEDS_ATTENTION.name} = true"
    )


log = logging.getLogger("offramp.metrics")


def attention_gauge_interval(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    raw = env.get(GAUGE_INTERVAL_VAR, "").strip() or "60"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 3600:
        raise ConfigError(
            f"invalid configuration: {GAUGE_INTERVAL_VAR}: {raw!r} is not a number of seconds "
            "between 0.1 and 3600"
        )
    return seconds


async def _refresh_forever(
    client: Client, meter: MetricMeter, task_queue: str, interval: float
) -> None:
    gauge = meter.create_gauge(
        ORDERS_NEEDING_ATTENTION, "Open sell orders flagged NeedsAttention"
    ).with_additional_attributes({"namespace": client.namespace, "task_queue": task_queue})
    query = attention_query(task_queue)
    failing = False
    while True:
        try:
            counted = await client.count_workflows(query, rpc_timeout=timedelta(seconds=10))
        except Exception as exc:  # Temporal unreachable: keep the last value, say so once
            if not failing:
                log.warning("cannot count orders needing attention: %s", exc)
            failing = True
        else:
            gauge.set(counted.count)
            failing = False
        await asyncio.sleep(interval)


@contextlib.contextmanager
def run_attention_gauge(
    client: Client, meter: MetricMeter, task_queue: str, interval: float
) -> Iterator[None]:
    """Refresh the gauge in the background for the duration of the block."""
    refresh = _refresh_forever(client, meter, task_queue, interval)
    task = asyncio.get_running_loop().create_task(refresh)
    try:
        yield
    finally:
        task.cancel()
