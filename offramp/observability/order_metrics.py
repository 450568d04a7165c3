"""Order, payment and provider metrics, recorded through the SDK's own metric meter so they leave
on the runtime's Prometheus endpoint (`OFFRAMP_METRICS_ADDRESS`, offramp/metrics.py) beside the
SDK's metrics. Every definition is here; workflows and activities call one function each.

- Workflow side (`order_*`, `payment_*`): `workflow.metric_meter()` records nothing while a
  workflow replays and issues no command, so a history is the same with or without metrics.
  The functions are deterministic (workflow time only) and never raise into workflow code.
- Activity side (`provider_call`, `rebroadcast_from_activity`): `activity.metric_meter()`.
- Labels are bounded: provider, stage, outcome, chain, asset, status, call; never an order id,
  address or amount. The SDK adds namespace, task_queue and workflow_type / activity_type.
- Without a metrics endpoint the meters are no-ops.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from temporalio import activity, workflow
from temporalio.common import MetricMeter

KADO: Final = "kado"  # the `provider` label of Kado orders

ORDERS_RECEIVED: Final = "offramp_orders_received_total"
ORDER_STAGE_ENTERED: Final = "offramp_order_stage_entered_total"
ORDERS_FINISHED: Final = "offramp_orders_finished_total"
ORDER_SETTLE_TIME: Final = "offramp_order_time_to_settle"
ORDER_ATTENTION: Final = "offramp_order_attention_raised_total"
ORDERS_NEEDING_ATTENTION: Final = "offramp_orders_needing_attention"  # gauge: attention_gauge.py
PAYMENTS_FINISHED: Final = "offramp_payments_finished_total"
PAYMENT_FEE_BUMPS: Final = "offramp_payment_fee_bumps_total"
PAYMENT_REBROADCASTS: Final = "offramp_payment_rebroadcasts_total"
PROVIDER_CALLS: Final = "offramp_provider_calls_total"
PROVIDER_CALL_LATENCY: Final = "offramp_provider_call_latency"

# Orders settle in minutes to days; provider calls in milliseconds to seconds (the SDK's default
# buckets stop at 10 s). Seconds, as the runtime reports durations (durations_as_seconds).
HISTOGRAM_BUCKETS: Final[dict[str, list[float]]] = {
    ORDER_SETTLE_TIME: [30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600],
    PROVIDER_CALL_LATENCY: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
}


def _workflow_meter() -> MetricMeter | None:
    try:
        return workflow.metric_meter()
    except Exception:  # outside a workflow (a unit test calling the code directly)
        return None


def _activity_meter() -> MetricMeter | None:
    try:
        return activity.metric_meter()
    except Exception:  # outside an activity
        return None


# ---- sell orders (workflow side) --------------------------------------------------------------


def order_received(provider: str) -> None:
    meter = _workflow_meter()
    if meter is not None:
        meter.create_counter(ORDERS_RECEIVED, "Sell orders whose workflow started").add(
            1, {"provider": provider}
        )


def order_stage(provider: str, stage: str, *, terminal: bool, started_at: datetime) -> None:
    """An order entered `stage`; a terminal stage also counts the outcome and, for SETTLED, the
    time from the workflow's start to settlement."""
    meter = _workflow_meter()
    if meter is None:
        return
    labels = {"provider": provider, "stage": stage}
    meter.create_counter(ORDER_STAGE_ENTERED, "Sell orders that entered a stage").add(1, labels)
    if not terminal:
        return
    meter.create_counter(ORDERS_FINISHED, "Sell orders ended, by outcome").add(
        1, {"provider": provider, "outcome": stage}
    )
    if stage == "SETTLED":
        elapsed = max(workflow.now() - started_at, timedelta(0))
        meter.create_histogram_timedelta(
            ORDER_SETTLE_TIME, "Time from an order's start to its settlement", "duration"
        ).record(elapsed, {"provider": provider})


def order_attention(provider: str) -> None:
    meter = _workflow_meter()
    if meter is not None:
        meter.create_counter(ORDER_ATTENTION, "Times a sell order was flagged NeedsAttention").add(
            1, {"provider": provider}
        )


# ---- payments (workflow side) -----------------------------------------------------------------


def payment_finished(chain: str, asset: str, status: str) -> None:
    meter = _workflow_meter()
    if meter is not None:
        meter.create_counter(PAYMENTS_FINISHED, "Payments ended, by status").add(
            1, {"chain": chain, "asset": asset, "status": status}
        )


def payment_fee_bump(chain: str) -> None:
    meter = _workflow_meter()
    if meter is not None:
        meter.create_counter(PAYMENT_FEE_BUMPS, "Replacement transactions with higher fees").add(
            1, {"chain": chain}
        )


def payment_rebroadcast(chain: str) -> None:
    """The same signed transaction sent again (the node dropped it, a reorg, a retried send)."""
    meter = _workflow_meter() or _activity_meter()
    if meter is not None:
        meter.create_counter(PAYMENT_REBROADCASTS, "Signed transactions sent again").add(
            1, {"chain": chain}
        )


# ---- provider calls (activity side) -----------------------------------------------------------


def provider_call(provider: str, call: str, outcome: str, elapsed: timedelta) -> None:
    """One HTTP call to a provider: `outcome` is `ok` or the provider error's stable type."""
    meter = _activity_meter()
    if meter is None:
        return
    meter.create_counter(PROVIDER_CALLS, "Provider API calls, by outcome").add(
        1, {"provider": provider, "call": call, "outcome": outcome}
    )
    meter.create_histogram_timedelta(
        PROVIDER_CALL_LATENCY, "Latency of provider API calls", "duration"
    ).record(elapsed, {"provider": provider, "call": call})
