"""Receiver configuration, from the environment (prefix `OFFRAMP_WEBHOOKS_`).

Each provider's secret comes inline (`..._SECRET`, development) or from a file (`..._SECRET_FILE`,
a mounted secret: never on a command line, which other users can read), as for the simulator's
`OFFRAMP_SIM_WEBHOOK_SECRET` / `--webhook-secret-file`. A provider without a secret has no route.
Temporal's connection comes from `TEMPORAL_*` (offramp.temporal_client), as for the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from offramp.config import ConfigError
from offramp.webhooks.signatures import (
    DEFAULT_TOLERANCE_SECONDS,
    KADO_SIGNATURE_HEADER,
    KADO_TIMESTAMP_HEADER,
    KIDAPAY_SIGNATURE_HEADER,
    KIDAPAY_TIMESTAMP_HEADER,
    SchemeHeaders,
)

ENV_PREFIX: Final = "OFFRAMP_WEBHOOKS_"
DEFAULT_PORT: Final = 8790


def _env(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="0 picks a free port")
    # A Kado order is ~2 KB of JSON: anything near this is not an event of ours.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    tolerance_seconds: float = Field(default=DEFAULT_TOLERANCE_SECONDS, gt=0)
    dedup_max_entries: int = Field(default=100_000, ge=1)
    # Default: twice the timestamp window (an older replay is refused by its timestamp).
    dedup_ttl_seconds: float | None = Field(default=None, gt=0)
    max_pending_wakes: int = Field(default=10_000, ge=1)
    wake_concurrency: int = Field(default=16, ge=1, le=256)
    order_gap_seconds: float = Field(
        default=1.0, ge=0, description="at most one poll_now per order this often (0: no gap)"
    )

    kado_secret: SecretStr | None = None
    kado_secret_file: Path | None = None
    kado_signature_header: str = KADO_SIGNATURE_HEADER
    kado_timestamp_header: str = KADO_TIMESTAMP_HEADER
    # KidaPay signs with the merchant's API key.
    kidapay_secret: SecretStr | None = None
    kidapay_secret_file: Path | None = None

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> WebhookSettings:
        for provider in ("kado", "kidapay"):
            if getattr(self, f"{provider}_secret") and getattr(self, f"{provider}_secret_file"):
                raise ValueError(f"give {provider}_secret or {provider}_secret_file, not both")
        return self

    @property
    def dedup_ttl(self) -> float:
        return self.dedup_ttl_seconds or 2 * self.tolerance_seconds

    def headers(self, provider: str) -> SchemeHeaders:
        if provider == "kado":
            return SchemeHeaders(self.kado_signature_header, self.kado_timestamp_header)
        return SchemeHeaders(KIDAPAY_SIGNATURE_HEADER, KIDAPAY_TIMESTAMP_HEADER)

    def secrets(self) -> dict[str, SecretStr]:
        """provider -> secret, for each provider configured (files read now)."""
        found: dict[str, SecretStr] = {}
        for provider in ("kado", "kidapay"):
            inline: SecretStr | None = getattr(self, f"{provider}_secret")
            path: Path | None = getattr(self, f"{provider}_secret_file")
            if path is not None:
                try:
                    text = path.read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        f"invalid configuration: {_env(provider + '_secret_file')}: cannot read "
                        f"{path}: {exc.strerror}"
                    ) from None
                inline = SecretStr(text) if text else None
                if inline is None:
                    raise ConfigError(
                        f"invalid configuration: {_env(provider + '_secret_file')}: {path} is empty"
                    )
            if inline is not None and inline.get_secret_value():
                found[provider] = inline
        if not found:
            raise ConfigError(
                "invalid configuration: no webhook secret: set "
                f"{_env('kado_secret_file')} (or {_env('kado_secret')}) and/or the KIDAPAY ones"
            )
        return found


def load_webhook_settings(**overrides: Any) -> WebhookSettings:
    """Read settings; a bad value raises ConfigError naming the variable, never its value."""
    try:
        return WebhookSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            where = _env(str(err["loc"][0])) if err["loc"] else f"{ENV_PREFIX}*"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
