"""Log setup: JSON lines, one line per expected activity failure, no secret in any line."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from offramp.config import ChainConfig, ConfigError, EngineSettings
from offramp.logs import (
    REDACTED,
    LogSettings,
    configure_logging,
    log_settings,
    redact_settings_secrets,
)

KEY = "0x" + "ab12" * 16
RPC = "https://eth-mainnet.example.com/v2/AbCdEfGhIjKlMnOpQrStUv"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in chatty.items():
            logging.getLogger(name).setLevel(old)


def capture(fmt: str, level: str = "INFO", **env: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(
        log_settings({"OFFRAMP_LOG_FORMAT": fmt, "OFFRAMP_LOG_LEVEL": level}),
        env=env,
        stream=stream,
    )
    return stream


@pytest.mark.usefixtures("restore_logging")
def test_json_format_writes_one_json_object_per_line() -> None:
    stream = capture("json")
    log = logging.getLogger("offramp.test")
    log.info("worker ready: task queue %s", "q1")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    ready, failed = (json.loads(line) for line in lines)
    assert ready["message"] == "worker ready: task queue q1" and ready["level"] == "INFO"
    assert ready["logger"] == "offramp.test" and ready["time"].endswith("+00:00")
    assert failed["level"] == "ERROR" and "ValueError: boom" in failed["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_level_from_configuration_and_http_requests_only_at_debug() -> None:
    stream = capture("text", level="WARNING")
    logging.getLogger("offramp.test").info("not shown")
    logging.getLogger("offramp.test").warning("shown")
    assert stream.getvalue().count("\n") == 1 and "shown" in stream.getvalue()
    stream = capture("text", level="INFO")
    logging.getLogger("httpx").info('HTTP Request: GET http://kado/v2/order "HTTP/1.1 200 OK"')
    assert stream.getvalue() == ""
    stream = capture("text", level="DEBUG")
    logging.getLogger("httpx").info("HTTP Request: GET http://kado/v2/order")
    assert "HTTP Request" in stream.getvalue()


def test_bad_level_or_format_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OFFRAMP_LOG_LEVEL: 'LOUD'"):
        log_settings({"OFFRAMP_LOG_LEVEL": "loud"})
    with pytest.raises(ConfigError, match="OFFRAMP_LOG_FORMAT: 'xml'"):
        log_settings({"OFFRAMP_LOG_FORMAT": "xml"})
    assert log_settings({}) == LogSettings(logging.INFO, "text")


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.usefixtures("restore_logging")
def test_configured_secrets_never_appear(fmt: str, tmp_path: Path) -> None:
    codec_key = "c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldC1rZXk="
    (tmp_path / "keys").write_text(f"k1:{codec_key}\n")
    stream = capture(
        fmt,
        OFFRAMP_HOT_WALLET_PRIVATE_KEY=KEY,
        TEMPORAL_API_KEY="temporal-cloud-api-key-xyz",
        OFFRAMP_CODEC_KEYS_FILE=str(tmp_path / "keys"),
    )
    chain = ChainConfig(
        chain_id=1,
        rpc_urls=[RPC],
        confirmations=12,
        hot_wallets=["0x" + "11" * 20],
        max_fee_per_gas_cap_wei=10**12,
        assets={},
    )
    redact_settings_secrets(
        EngineSettings(chains={"ethereum": chain}, kado_widget_id=SecretStr("widget-id-123456"))
    )
    log = logging.getLogger("offramp.test")
    log.warning("signing with %s (bare %s) via %s", KEY, KEY[2:], RPC)
    log.info("api key temporal-cloud-api-key-xyz, widget widget-id-123456, codec %s", codec_key)
    try:
        raise ConnectionError(f"cannot reach https://eth-mainnet.example.com/v2/{RPC[-22:]}")
    except ConnectionError:
        log.exception("rpc down")
    out = stream.getvalue()
    for secret in (KEY, KEY[2:], RPC, RPC[-22:], "temporal-cloud-api-key-xyz", codec_key):
        assert secret not in out
    assert "widget-id-123456" not in out
    assert out.count(REDACTED) >= 7, out


# ---- the SDK's activity-failure records, from a real worker ----------------------------------

_ATTEMPTS: dict[str, int] = {}


@activity.defn
async def flaky_fetch(key: str) -> str:
    """Fails as a dependency that is down would (connection, then our own retryable error)."""
    _ATTEMPTS[key] = _ATTEMPTS.get(key, 0) + 1
    if _ATTEMPTS[key] == 1:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    if _ATTEMPTS[key] == 2:
        raise ApplicationError("provider returned 503", type="ProviderUnavailable")
    return "ok"


@activity.defn
async def buggy(key: str) -> str:
    attempt = _ATTEMPTS[f"buggy-{key}"] = _ATTEMPTS.get(f"buggy-{key}", 0) + 1
    if attempt == 1:
        settings: dict[str, str] = {}
        return settings["missing"]  # a bug: keeps its traceback
    return "ok"


@workflow.defn(sandboxed=False)
class TwoActivities:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
        results = []
        for fn in (flaky_fetch, buggy):
            results.append(
                await workflow.execute_activity(
                    fn, key, start_to_close_timeout=timedelta(seconds=30), retry_policy=retry
                )
            )
        return results


@pytest.mark.usefixtures("restore_logging")
async def test_expected_activity_failures_are_one_line_each_bugs_keep_the_traceback(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    stream = capture("text")
    wf_id = f"logs-{uuid.uuid4().hex[:8]}"
    async with Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=[TwoActivities],
        activities=[flaky_fetch, buggy],
    ):
        result = await dev_env.client.execute_workflow(
            TwoActivities.run, wf_id, id=wf_id, task_queue=task_queue
        )
    assert result == ["ok", "ok"]
    lines = [line for line in stream.getvalue().splitlines() if line]
    failures = [line for line in lines if "failed" in line or "Traceback" in line]
    flaky = [line for line in failures if "flaky_fetch" in line]
    assert len(flaky) == 2, "\n".join(lines)
    assert f"activity flaky_fetch attempt 1 (workflow {wf_id}) failed, will retry:" in flaky[0]
    assert "ConnectionRefusedError: [Errno 111] Connect call failed" in flaky[0]
    expected = "failed, will retry: ProviderUnavailable: provider returned 503"
    assert flaky[1].endswith(f"attempt 2 (workflow {wf_id}) {expected}"), flaky[1]
    # The bug: the SDK's own record with its traceback, unchanged.
    text = stream.getvalue()
    assert text.count("Traceback") == 1 and "KeyError: 'missing'" in text, text
    assert text.index("Traceback") > text.index(flaky[1])
