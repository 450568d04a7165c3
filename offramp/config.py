"""Engine configuration, read from the environment (prefix `OFFRAMP_`).

Temporal connection settings are deliberately not here: the worker and the client use Temporal's
own conventions (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, TLS variables,
profiles) through `temporalio.envconfig`, so the same process points at a dev server, a self-hosted
cluster or Temporal Cloud unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from offramp.chain.addresses import checksum

ENV_PREFIX = "OFFRAMP_"
DEFAULT_TASK_QUEUE = "offramp-sell-orders"
# What a worker process hosts (worker/roles.py, README "Worker roles"):
# - `all`: every workflow and activity, on the main queue and the signer queue (chains + key);
# - `workflows`: workflow tasks only, no activity (no chain, key or provider settings needed);
# - `keyless`: workflow tasks and every activity that needs no key, on the main queue (chains,
#   no key: it refuses to start with one);
# - `signer`: only the signer queue's activities (offramp.task_queues; chains + key).
WorkerRole = Literal["all", "workflows", "keyless", "signer"]
DEFAULT_DEPLOYMENT_NAME = "offramp"


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
    unfunded_gas_limit: int = Field(
        default=100_000,
        ge=21_000,
        description="gas limit of a payment no hot wallet can cover yet (it waits for a top-up "
        "and a gas estimate would fail for the balance alone); unused gas is not paid",
    )

    @property
    def is_native(self) -> bool:
        return self.address is None

    def over_order_cap(self, amount: Decimal) -> bool:
        """The per-order cap rule, for the order check and the payment preflight alike."""
        return amount > self.per_order_cap


def find_asset(assets: Mapping[str, AssetConfig], symbol: str) -> AssetConfig | None:
    """The allow-listed asset `symbol` names: by exact key, else by the one key equal ignoring
    case. The one lookup rule, for the order check and the payment preflight alike."""
    asset = assets.get(symbol)
    if asset is None:
        matches = [a for key, a in assets.items() if key.lower() == symbol.lower()]
        asset = matches[0] if len(matches) == 1 else None
    return asset


# Confirmation depth per known chain id when `confirmations` is not configured (see README,
# "Finality"). L1s reorg rarely past a few blocks; OP-stack/Arbitrum heads are the sequencer's
# (deeper for a batch reorg); Polygon PoS had reorgs of dozens of blocks before milestones.
DEFAULT_CONFIRMATIONS: dict[int, int] = {
    1: 12,  # Ethereum mainnet
    11155111: 12,  # Sepolia
    17000: 12,  # Holesky
    10: 10,  # Optimism
    8453: 10,  # Base
    84532: 10,  # Base Sepolia
    42161: 20,  # Arbitrum One (0.25 s blocks)
    137: 64,  # Polygon PoS
    56: 15,  # BNB Smart Chain
    100: 12,  # Gnosis
    43114: 1,  # Avalanche C-Chain (single-slot finality)
    59144: 10,  # Linea
    31337: 1,  # the local anvil chain
}
UNKNOWN_CHAIN_CONFIRMATIONS = 12

Finality = Literal["depth", "safe", "finalized"]


def default_confirmations(chain_id: int) -> int:
    return DEFAULT_CONFIRMATIONS.get(chain_id, UNKNOWN_CHAIN_CONFIRMATIONS)


def _singular_to_list(data: dict[str, Any], singular: str, plural: str) -> dict[str, Any]:
    """Accept the one-value key of older configurations as a one-element list."""
    if singular not in data:
        return data
    if plural in data:
        raise ValueError(f"give {singular} or {plural}, not both")
    rest = {k: v for k, v in data.items() if k != singular}
    return {**rest, plural: [data[singular]]}


def _http_urls(urls: list[str]) -> list[str]:
    for i, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            # The URL itself is a secret: say which one, not what it is.
            raise ValueError(f"rpc_urls[{i}] is not an http(s) URL")
    return urls


def _unique(values: list[str]) -> list[str]:
    lowered = [v.lower() for v in values]
    if len(set(lowered)) != len(lowered):
        raise ValueError("duplicate entries")
    return values


class ChainConfig(BaseModel):
    """An EVM chain, keyed in `EngineSettings.chains` by the provider's lower-case chain name.

    `rpc_url` / `hot_wallet` (one each) are still accepted and become one-element lists; a config
    with one of each dumps in that older form too, so older workers read newer files."""

    # hide_input_in_errors: a ValidationError's str() would otherwise print the RPC URLs given.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    chain_id: int = Field(gt=0)
    # RPC URLs often embed API keys: never in a repr, an error, a log line or a history.
    rpc_urls: Annotated[list[str], AfterValidator(_unique), AfterValidator(_http_urls)] = Field(
        min_length=1, repr=False
    )
    rpc_labels: list[str] | None = Field(
        default=None, description="names of the RPC nodes in messages (default 'rpc #1', ...)"
    )
    confirmations: int = Field(ge=1, description="default per known chain id")
    finality: Finality = Field(
        default="depth",
        description="depth: `confirmations` blocks; safe/finalized: also the node's block tag",
    )
    hot_wallets: Annotated[list[Address], AfterValidator(_unique)] = Field(min_length=1)
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
    rpc_request_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="one HTTP request to one node; default: the activity's limit shared by nodes",
    )
    rpc_cooldown_seconds: float = Field(
        default=30.0, ge=0, description="a node that failed is tried last for this long"
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

    @model_validator(mode="before")
    @classmethod
    def _older_keys_and_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = _singular_to_list(data, "rpc_url", "rpc_urls")
        data = _singular_to_list(data, "hot_wallet", "hot_wallets")
        if data.get("confirmations") is None and isinstance(data.get("chain_id"), int):
            data = {**data, "confirmations": default_confirmations(data["chain_id"])}
        return data

    @model_validator(mode="after")
    def _one_native(self) -> ChainConfig:
        natives = [a.symbol for a in self.assets.values() if a.is_native]
        if len(natives) > 1:
            raise ValueError(f"more than one native asset configured: {natives}")
        for key, asset in self.assets.items():
            if key != asset.symbol:
                raise ValueError(f"asset key {key!r} differs from its symbol {asset.symbol!r}")
        if self.rpc_labels is not None and len(self.rpc_labels) != len(self.rpc_urls):
            raise ValueError(
                f"rpc_labels has {len(self.rpc_labels)} names for {len(self.rpc_urls)} rpc_urls"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump_older_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if len(self.rpc_urls) == 1 and "rpc_urls" in data:
            data["rpc_url"] = data.pop("rpc_urls")[0]
        if len(self.hot_wallets) == 1 and "hot_wallets" in data:
            data["hot_wallet"] = data.pop("hot_wallets")[0]
        return data

    @property
    def hot_wallet(self) -> str:
        """The pool's first wallet (a pool of one's only one). Never assumed to be the sender of
        a payment: a payment names its wallet (see ChainActivities._sender_of_calling_payment)."""
        return self.hot_wallets[0]

    @property
    def rpc_url(self) -> str:
        return self.rpc_urls[0]

    def rpc_label(self, index: int) -> str:
        """How messages name node `index` (never by URL)."""
        if self.rpc_labels is not None:
            return self.rpc_labels[index]
        return f"rpc #{index + 1}"

    def owns(self, address: str) -> bool:
        return address.lower() in {w.lower() for w in self.hot_wallets}


class EngineSettings(BaseSettings):
    """Everything the worker and the CLI read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)

    # Chains: inline JSON in OFFRAMP_CHAINS, or a JSON file in OFFRAMP_CHAINS_FILE.
    chains: dict[str, ChainConfig] = Field(default_factory=dict)
    chains_file: Path | None = None

    # The hot wallets' keys: inline (development) or eth-account encrypted keystores. The signer
    # holds the union; each key signs for its own address only.
    hot_wallet_private_key: SecretStr | None = None
    hot_wallet_private_keys: SecretStr | None = Field(default=None, description="comma-separated")
    hot_wallet_keystore_file: Path | None = None
    hot_wallet_keystore_files: str | None = Field(
        default=None, description="comma-separated paths, all with the one password file"
    )
    hot_wallet_keystore_password_file: Path | None = None

    # Kado order-status API.
    kado_base_url: str = "https://api.kado.money"
    kado_widget_id: SecretStr | None = None
    kado_timeout_seconds: float = Field(default=10.0, gt=0)

    # The worker process (README "Worker sizing"): sized for a few thousand open orders per worker
    # (each one SellOrder + one Payment open, plus the hot-wallet entities). A workflow evicted
    # from the cache replays its whole history on its next task.
    worker_role: WorkerRole = "all"
    worker_max_cached_workflows: int = Field(default=10_000, ge=0)
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=2)
    worker_max_concurrent_activities: int = Field(default=1_000, ge=1)
    # A task for a cached workflow waits this long for its worker before going to any worker
    # (and a full replay): long enough for a busy worker, short enough when one died.
    worker_sticky_schedule_to_start_timeout_seconds: float = Field(default=30.0, gt=0)

    # Worker Versioning (README "Deploying a workflow change"): every worker names its build;
    # with versioning on it takes only tasks routed to that build (deployment name + build id),
    # so pinned orders finish on the build that started them. Off, the build id is still
    # recorded in history. Default build id: the package version (set it per release, e.g.
    # the git sha).
    worker_versioning: bool = False
    deployment_name: str = Field(
        default=DEFAULT_DEPLOYMENT_NAME, min_length=1, pattern=r"^[A-Za-z0-9_-]+$"
    )
    build_id: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")

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
        keystores = self.hot_wallet_keystore_file or self.hot_wallet_keystore_files
        if keystores and not self.hot_wallet_keystore_password_file:
            raise ValueError(
                "hot_wallet_keystore_password_file is required with hot_wallet_keystore_file(s)"
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
