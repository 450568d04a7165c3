"""The SDK runtime's Prometheus metrics (README "Observability"): `OFFRAMP_METRICS_ADDRESS`.

The Temporal core serves `/metrics` on that address itself (worker pollers, task slots and
latencies, activity and workflow task outcomes, sticky cache, RPC calls), so the worker needs no
HTTP server of its own. Unset: no metrics endpoint, the SDK's default runtime.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from offramp.config import ENV_PREFIX, ConfigError
from offramp.observability.order_metrics import HISTOGRAM_BUCKETS

METRICS_ADDRESS_VAR = f"{ENV_PREFIX}METRICS_ADDRESS"
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


def host_port(variable: str, example: str, env: Mapping[str, str] | None = None) -> str | None:
    """The `host:port` in `variable` (None when unset); ConfigError naming it when malformed."""
    env = os.environ if env is None else env
    address = env.get(variable, "").strip()
    if not address:
        return None
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            f"invalid configuration: {variable}: {address!r} is not host:port (e.g. {example})"
        )
    return address


def metrics_address(env: Mapping[str, str] | None = None) -> str | None:
    return host_port(METRICS_ADDRESS_VAR, "0.0.0.0:9464", env)


def metrics_runtime(address: str) -> Runtime:
    """A runtime exporting Prometheus metrics on `address`; ConfigError if it cannot bind."""
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    durations_as_seconds=True,
                    histogram_bucket_overrides=HISTOGRAM_BUCKETS,
                ),
                global_tags={"service": "offramp-worker"},
            )
        )
    except Exception as exc:  # the core reports a bind failure as a plain exception
        raise ConfigError(
            f"invalid configuration: {METRICS_ADDRESS_VAR}: cannot serve metrics on "
            f"{address}: {exc}"
        ) from None
