"""The SDK runtime's Prometheus metrics (README "Metrics"): `OFFRAMP_METRICS_ADDRESS=host:port`.

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

METRICS_ADDRESS_VAR = f"{ENV_PREFIX}METRICS_ADDRESS"
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


def metrics_address(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    address = env.get(METRICS_ADDRESS_VAR, "").strip()
    if not address:
        return None
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            f"invalid configuration: {METRICS_ADDRESS_VAR}: {address!r} is not host:port "
            "(e.g. 0.0.0.0:9464)"
        )
    return address


def metrics_runtime(address: str) -> Runtime:
    """A runtime exporting Prometheus metrics on `address`; ConfigError if it cannot bind."""
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True),
                global_tags={"service": "offramp-worker"},
            )
        )
    except Exception as exc:  # the core reports a bind failure as a plain exception
        raise ConfigError(
            f"invalid configuration: {METRICS_ADDRESS_VAR}: cannot serve metrics on "
            f"{address}: {exc}"
        ) from None
