"""Log setup for the worker and the CLI (README "Logs").

- Level and format by configuration: `OFFRAMP_LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR; default
  INFO for the worker, WARNING for the CLI, whose output is its own) and `OFFRAMP_LOG_FORMAT`
  (`text`, default, or `json`: one JSON object per line).
- One line per failed activity attempt that is expected (an `ApplicationError` our activities
  raise on purpose, or a transient I/O error: connection, timeout, a node's RPC error), without the
  SDK's traceback; unexpected exceptions (bugs) keep theirs.
- Provider and RPC HTTP requests (httpx logs each at INFO) only at DEBUG.
- Every configured secret (private key, API keys, RPC URLs, codec keys and token) is replaced by
  `[REDACTED]` in every line, tracebacks included: a second line of defence behind code that never
  logs them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from offramp.codec.keys import load_key_ring
from offramp.config import ENV_PREFIX, ConfigError, EngineSettings

LOG_LEVEL_VAR = f"{ENV_PREFIX}LOG_LEVEL"
LOG_FORMAT_VAR = f"{ENV_PREFIX}LOG_FORMAT"
LogFormat = Literal["text", "json"]
REDACTED = "[REDACTED]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that log every HTTP request at INFO: quiet unless DEBUG is asked for.
_CHATTY_LOGGERS = ("httpx", "httpcore", "urllib3", "aiohttp.access", "uvicorn.access")
# Environment variables whose whole value is a secret.
_SECRET_VARS = (
    f"{ENV_PREFIX}HOT_WALLET_PRIVATE_KEY",
    f"{ENV_PREFIX}KADO_WIDGET_ID",
    f"{ENV_PREFIX}CODEC_SERVER_TOKEN",
    "TEMPORAL_API_KEY",
)
_MIN_SECRET_CHARS = 6  # shorter "secrets" would redact ordinary words


@dataclass(frozen=True)
class LogSettings:
    level: int = logging.INFO
    format: LogFormat = "text"


def log_settings(env: Mapping[str, str] | None = None, default_level: str = "INFO") -> LogSettings:
    env = os.environ if env is None else env
    level_name = env.get(LOG_LEVEL_VAR, "").strip().upper() or default_level
    level = logging.getLevelNamesMapping().get(level_name)
    if level is None or level_name in ("NOTSET", "WARN", "FATAL"):
        raise ConfigError(
            f"invalid configuration: {LOG_LEVEL_VAR}: {level_name!r} is not one of "
            "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        )
    fmt = env.get(LOG_FORMAT_VAR, "text").strip().lower() or "text"
    if fmt not in ("text", "json"):
        raise ConfigError(f"invalid configuration: {LOG_FORMAT_VAR}: {fmt!r} is not text or json")
    return LogSettings(level=level, format="json" if fmt == "json" else "text")


# ---- secrets ----------------------------------------------------------------------------------


class Redactor:
    """Replaces known secret strings; grows as settings are loaded (`add`)."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, values: Iterable[str | None]) -> None:
        merged = set(self._secrets)
        for value in values:
            text = (value or "").strip()
            # A private key is written with or without 0x.
            merged |= {c for c in (text, text.removeprefix("0x")) if len(c) >= _MIN_SECRET_CHARS}
        self._secrets = sorted(merged, key=len, reverse=True)  # longest first: no partial leaks

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


REDACTOR = Redactor()


def url_secrets(url: str) -> list[str]:
    """An RPC URL and the parts of it that are usually keys (path segments, query values,
    password): a provider's error may quote only a part."""
    parts = [url, url.rstrip("/")]
    try:
        split = urlsplit(url)
    except ValueError:
        return parts
    if split.password:
        parts.append(split.password)
    parts += [seg for seg in split.path.split("/") if len(seg) >= 16]
    parts += [value for _, value in parse_qsl(split.query) if len(value) >= 8]
    return parts


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values = [env.get(name) for name in _SECRET_VARS]
    codec_keys = env.get(f"{ENV_PREFIX}CODEC_KEYS", "")
    values += [entry.partition(":")[2] for entry in codec_keys.replace("\n", ",").split(",")]
    try:
        key_ring = load_key_ring(env)  # also the keys of OFFRAMP_CODEC_KEYS_FILE
    except ConfigError:
        key_ring = None  # reported when the converter is built, naming the variable
    if key_ring is not None:
        values += key_ring.secrets()
    return [v for v in values if v]


# ---- formatting -------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception; plus the SDK's
    activity/workflow context when a record carries it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for context in ("temporal_activity", "temporal_workflow"):
            value = getattr(record, context, None)
            if isinstance(value, Mapping):
                entry[context.removeprefix("temporal_")] = dict(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class RedactingFormatter(logging.Formatter):
    """Formats with `inner`, then removes every configured secret from the whole line."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self._inner = inner
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(self._inner.format(record))


def _formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


# ---- activity failures ------------------------------------------------------------------------

_ACTIVITY_FAILURE = "ActivityFailure"  # the SDK's `__temporal_error_identifier` on that record


def _transient_types() -> tuple[type[BaseException], ...]:
    """Failures that are expected while a dependency is down or busy: Temporal retries them."""
    import aiohttp
    import httpx
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError
    from web3 import exceptions as web3_errors

    return (
        ApplicationError,  # raised on purpose by our activities, with a message that says why
        OSError,  # connection refused/reset, DNS; aiohttp's connection errors are OSErrors too
        TimeoutError,
        httpx.TransportError,
        aiohttp.ClientError,
        RPCError,
        web3_errors.Web3RPCError,
        web3_errors.ProviderConnectionError,
        web3_errors.TimeExhausted,
        web3_errors.TransactionNotFound,
    )


class ActivityFailureLines(logging.Filter):
    """The SDK logs every failed activity attempt at WARNING with its full traceback. For an
    expected failure this rewrites the record into one line naming the activity, attempt, workflow
    and error; an unexpected exception (a bug) keeps its traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._expected: tuple[type[BaseException], ...] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "__temporal_error_identifier", None) != _ACTIVITY_FAILURE:
            return True
        error = record.exc_info[1] if record.exc_info else None
        if self._expected is None:
            self._expected = _transient_types()
        if error is None or not isinstance(error, self._expected):
            return True
        info = getattr(record, "temporal_activity", None) or {}
        final = bool(getattr(error, "non_retryable", False))
        record.msg = "activity %s attempt %s (workflow %s) failed%s: %s: %s"
        record.args = (
            info.get("activity_type", "?"),
            info.get("attempt", "?"),
            info.get("workflow_id", "?"),
            ", not retryable" if final else ", will retry",
            getattr(error, "type", None) or type(error).__name__,
            " ".join(str(getattr(error, "message", None) or error).split()) or repr(error),
        )
        record.exc_info = None
        record.exc_text = None
        return True


# ---- setup ------------------------------------------------------------------------------------


def configure_logging(
    settings: LogSettings | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stream: Any = None,
) -> LogSettings:
    """Configure the root logger once per process (replacing earlier handlers); redacts the
    secrets found in `env` (default os.environ). ConfigError for a bad level or format."""
    settings = settings or log_settings(env)
    REDACTOR.add(env_secrets(env))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(_formatter(settings.format), REDACTOR))
    handler.addFilter(ActivityFailureLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    quiet = logging.NOTSET if settings.level <= logging.DEBUG else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return settings


def redact_settings_secrets(settings: EngineSettings) -> None:
    """Add the secrets of loaded settings (key, widget id, every chain's RPC URL)."""
    values: list[str | None] = []
    for secret in (settings.hot_wallet_private_key, settings.kado_widget_id):
        if secret is not None:
            values.append(secret.get_secret_value())
    if settings.hot_wallet_private_keys is not None:  # a pool's keys, comma-separated
        values += [
            k.strip() for k in settings.hot_wallet_private_keys.get_secret_value().split(",")
        ]
    for chain in settings.chains.values():
        for url in chain.rpc_urls:
            values += url_secrets(url)
    REDACTOR.add(values)
