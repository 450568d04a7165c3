"""Engine configuration, read from the environment (prefix `OFFRAMP_`).

Temporal connection settings are deliberately not here: the worker and the client use Temporal's
own conventions (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, TLS variables,
profiles) through `temporalio.envconfig`, so the same process points at a dev server, a self-hosted
cluster or Temporal Cloud unchanged.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from offramp.chain.addresses import checksum

ENV_PREFIX = "OFFRAMP_"
DEFAULT_TASK_QUEUE = "offramp-sell-orders"


class ConfigError(Exception):
    """A setting is missing or invalid. The message names the environment variable."""


# Strict 0x + 40 hex digits, EIP-55 verified when mixed case (the one address check we have).
Address = Annotated[str, AfterValidator(checksum)]


class AssetConfig(BaseModel):
    """One asset a chain may pay out: native coin (`address` None) or an allow-listed ERC-20."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    address: Address | None = None
    decimals: int = Field(ge=0, le=36)
    per_order_cap: Decimal = Field(gt=0, description="most one order may pay, in whole units")
    daily_cap: Decimal = Field(gt=0, description="most the hot wallet pays per UTC day")
    review_threshold: Decimal | None = Field(
        default=None, gt=0, description="orders of at least this amount wait for an operator"
    )

    @property
    def is_native(self) -> bool:
        return self.address is None


class ChainConfig(BaseModel):
    """An EVM chain, keyed in `EngineSettings.chains` by the provider's lower-case chain name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(gt=0)
    rpc_url: str
    confirmations: int = Field(default=1, ge=1)
    hot_wallet: Address
    max_fee_per_gas_cap_wei: int = Field(gt=0, description="stop bumping fees above this")
    assets: dict[str, AssetConfig]

    # Sending (offramp.chain / workflows.payment / workflows.hot_wallet).
    in_flight_limit: int = Field(default=16, ge=1, description="nonces reserved, not yet final")
    bump_after_seconds: float = Field(
        default=60.0, gt=0, description="bump the fee of a tx not mined within this"
    )
    poll_interval_seconds: float = Field(default=2.0, gt=0, description="receipt polling")
    rpc_timeout_seconds: float = Field(
        default=30.0, gt=0, description="time limit of one RPC activity (e.g. sign-and-broadcast)"
    )
    reservation_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="a nonce reserved but not broadcast this long is checked for abandonment",
    )
    on_insufficient_funds: Literal["wait", "reject"] = Field(
        default="wait",
        description="a payment the hot wallet cannot cover: wait without a nonce (NeedsAttention) "
        "until a top-up, or end it REJECTED insufficient_balance",
    )
    funds_recheck_seconds: float = Field(
        default=30.0, gt=0, description="how often the wallet's balances are re-read while short"
    )
    wallet_entity_suffix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="tests only: separates hot-wallet entities of chains sharing a chain id",
    )

    @model_validator(mode="after")
    def _one_native(self) -> ChainConfig:
        natives = [a.symbol for a in self.assets.values() if a.is_native]
        if len(natives) > 1:
            raise ValueError(f"more than one native asset configured: {natives}")
        for key, asset in self.assets.items():
            if key != asset.symbol:
                raise ValueError(f"asset key {key!r} differs from its symbol {asset.symbol!r}")
        return self


class EngineSettings(BaseSettings):
    """Everything the worker and the CLI read from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)

    # Chains: inline JSON in OFFRAMP_CHAINS, or a JSON file in OFFRAMP_CHAINS_FILE.
    chains: dict[str, ChainConfig] = Field(default_factory=dict)
    chains_file: Path | None = None

    # The hot wallet's key: either inline (development) or an eth-account encrypted keystore.
    hot_wallet_private_key: SecretStr | None = None
    hot_wallet_keystore_file: Path | None = None
    hot_wallet_keystore_password_file: Path | None = None

    # Kado order-status API.
    kado_base_url: str = "https://api.kado.money"
    kado_widget_id: SecretStr | None = None
    kado_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _load_chains_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("chains_file") and not data.get("chains"):
            path = Path(data["chains_file"])
            try:
                data = {**data, "chains": json.loads(path.read_text())}
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read chains file {path}: {exc}") from exc
        return data

    @model_validator(mode="after")
    def _keystore_complete(self) -> EngineSettings:
        if self.hot_wallet_keystore_file and not self.hot_wallet_keystore_password_file:
            raise ValueError(
                "hot_wallet_keystore_password_file is required with hot_wallet_keystore_file"
            )
        return self

    def chain(self, blockchain: str) -> ChainConfig | None:
        return self.chains.get(blockchain.strip().lower())


def _env_name(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return f"{ENV_PREFIX}* (settings)"
    head = f"{ENV_PREFIX}{str(loc[0]).upper()}"
    rest = ".".join(str(part) for part in loc[1:])
    return f"{head} ({rest})" if rest else head


def load_settings(**overrides: Any) -> EngineSettings:
    """Read settings; a bad value raises ConfigError naming the variable, never echoing secrets."""
    try:
        return EngineSettings(**overrides)
    except SettingsError as exc:
        # Raised for a complex value (JSON) that does not parse; its message names the field.
        field_name = str(exc).split('"')[1] if '"' in str(exc) else "*"
        raise ConfigError(
            f"invalid configuration: {_env_name((field_name,))}: not valid JSON"
        ) from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            problems.append(f"{_env_name(err['loc'])}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
