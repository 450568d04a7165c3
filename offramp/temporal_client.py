"""Connecting to Temporal the way Temporal's own tools do (envconfig), with our data converter
(encrypting when `OFFRAMP_CODEC_KEYS` is set: offramp.converter) and, when `OFFRAMP_TRACING` is
on, the tracing interceptor (offramp.observability.tracing; workers built on the client get it
too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from offramp.converter import data_converter
from offramp.observability.tracing import tracing_interceptors


def connect_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Connection options from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS vars and
    the optional TOML profile; defaults to the local dev server (localhost:7233, namespace default).
    """
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config(override_env_vars=env))
    config.setdefault("target_host", "localhost:7233")
    return config


async def connect(env: Mapping[str, str] | None = None, **overrides: Any) -> Client:
    config = connect_config(env)
    config.setdefault("data_converter", data_converter(env))
    config.setdefault("interceptors", tracing_interceptors(env))
    config.update(overrides)
    target = config.pop("target_host")
    return await Client.connect(target, **config)
