"""The sell-order contract: workflow input, stages, state and result (JSON via pydantic).

These models are the documented interface for wallet backends in any language (a JSON Schema is
generated from them). Imports no I/O library, so workflows can use them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from offramp.chain.addresses import validate_address
from offramp.orders.names import CHECK_SELL_ORDER_ACTIVITY as CHECK_SELL_ORDER_ACTIVITY
from offramp.orders.names import PAYMENT_CLOSED_WITHOUT_OUTCOME as PAYMENT_CLOSED_WITHOUT_OUTCOME
from offramp.orders.names import PAYMENT_OUTCOME_ACTIVITY as PAYMENT_OUTCOME_ACTIVITY
from offramp.orders.names import WORKFLOW_TYPE as WORKFLOW_TYPE
from offramp.providers import ADAPTERS, DEFAULT_PROVIDER
from offramp.rejections import RejectReason as RejectReason

# The order workflow's id: `<provider>-sell-<orderId>` (Kado's orders: `kado-sell-<orderId>`).
WORKFLOW_ID_PREFIX: Final = f"{DEFAULT_PROVIDER}-sell-"
ORDER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_ORDER_ID_RE: Final = re.compile(ORDER_ID_PATTERN)


def workflow_id_for(order_id: str, provider: str = DEFAULT_PROVIDER) -> str:
    return f"{provider}-sell-{order_id}"


def order_payment_id(provider: str, order_id: str) -> str:
    """The payment id of an order (the payment workflow's id is derived from it): the one place
    it is built. Kado's orders: `kado-<orderId>`."""
    return f"{provider}-{order_id}"


# Fields written only when they differ from the old behaviour, so an input an old worker could
# run is one it can decode (`extra="forbid"`) during a rolling deploy, and Kado's payloads stay
# as they were before providers existed.
_OMITTED_AT_DEFAULT: Final = {
    "provider": DEFAULT_PROVIDER,
    "amount_searchable": True,
    "history_budget": 5_000,
}


def _without_old_defaults(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if _OMITTED_AT_DEFAULT.get(k, ...) != v}
    return data


def _known_provider(value: str) -> str:
    if value not in ADAPTERS:
        raise ValueError(f"is not a known provider ({', '.join(sorted(ADAPTERS))})")
    return value


def _order_id(value: str) -> str:
    if not _ORDER_ID_RE.fullmatch(value):
        raise ValueError(
            "must be 1-128 letters, digits or _ . : - and start with a letter or digit"
        )
    return value


def _required_address(value: str | None) -> str | None:
    return validate_address(value)


def _exact_decimal(value: object) -> object:
    # A JSON number reaches us as a float, which has already lost digits: money comes as text.
    if isinstance(value, float):
        raise ValueError('give the amount as a decimal string (e.g. "100.25"), not a number')
    return value


ProviderName = Annotated[
    str,
    AfterValidator(_known_provider),
    WithJsonSchema({"type": "string", "enum": sorted(ADAPTERS)}),
]
OrderId = Annotated[
    str,
    AfterValidator(_order_id),
    WithJsonSchema({"type": "string", "pattern": ORDER_ID_PATTERN}),
]
ExactAmount = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    Field(gt=0, allow_inf_nan=False),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}),
]
OptionalAddress = Annotated[
    str | None,
    AfterValidator(_required_address),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}, {"type": "null"}]}
    ),
]


class SellOrderInput(BaseModel):
    """What a wallet backend starts a sell order with.

    `user_ref` and/or `wallet_address` bind the provider's order to the requester: the order is
    rejected unless the provider's order says the same. `max_amount` is the most the backend allows
    this order to pay, in whole units of the order's asset.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: OrderId
    # Whose order it is; orders started before providers existed are Kado's.
    provider: ProviderName = DEFAULT_PROVIDER
    user_ref: str | None = Field(default=None, min_length=1, max_length=200)
    wallet_address: OptionalAddress = None
    max_amount: ExactAmount
    # How long to wait for the provider to make the order ready for the deposit.
    ready_timeout: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    # How long an order above the review threshold waits for an operator.
    approval_timeout: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    # From payment to settlement; past it the order ends UNRESOLVED (the transfer's fate is
    # known by then; the provider's is not).
    settlement_timeout: timedelta = Field(default=timedelta(days=3), gt=timedelta(0))
    # Provider status `unknown` for longer than this flags the order (Kado: "reach out to support
    # if funds don't arrive within 10 minutes"); it keeps following.
    unknown_alert_after: timedelta = Field(default=timedelta(minutes=10), gt=timedelta(0))
    # How eagerly to poll the provider: the first retry after this, growing to the maximum.
    poll_initial_interval: timedelta = Field(default=timedelta(seconds=5), gt=timedelta(0))
    poll_max_interval: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    # A webhook route wakes this order (poll_now): the polls need only be a safety net, at most
    # `safety_poll_interval` apart.
    webhooks: bool = False
    safety_poll_interval: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    # Each (billed) attempt of a wait polls inside for up to this long, on the same schedule;
    # zero: one poll per attempt. Temporal Cloud bills attempts, not polls (README, "Cost").
    wait_attempt: timedelta = Field(default=timedelta(0), ge=timedelta(0))
    # Whether the order's amount is a search attribute (`Amount`). The server indexes search
    # attributes, so they stay plaintext even with encrypted payloads: `start_sell_order` turns
    # this off on a client that encrypts, unless the backend set it (README "Encrypted payloads").
    amount_searchable: bool = True
    # A run whose history reaches this many events (or that the server says is long) continues
    # as new, carrying the order (a storm of wakes over days must not grow one history for good).
    history_budget: int = Field(default=5_000, ge=100, le=40_000)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_old_defaults(handler(self))

    @model_validator(mode="after")
    def _bound_to_requester(self) -> SellOrderInput:
        if self.user_ref is None and self.wallet_address is None:
            raise ValueError("give user_ref and/or wallet_address: the order must be bound")
        return self

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.order_id, self.provider)

    @property
    def payment_id(self) -> str:
        return order_payment_id(self.provider, self.order_id)


class Stage(StrEnum):
    RECEIVED = "RECEIVED"
    AWAITING_ORDER = "AWAITING_ORDER"
    VALIDATED = "VALIDATED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    FUNDING = "FUNDING"
    CONFIRMING = "CONFIRMING"
    TRACKING = "TRACKING"
    # Terminal stages.
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    PROVIDER_FAILED = "PROVIDER_FAILED"
    TX_REVERTED = "TX_REVERTED"
    UNRESOLVED = "UNRESOLVED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        Stage.SETTLED,
        Stage.REJECTED,
        Stage.CANCELLED,
        Stage.EXPIRED,
        Stage.PROVIDER_FAILED,
        Stage.TX_REVERTED,
        Stage.UNRESOLVED,
    }
)
# Stages from which a transaction may exist: cancel is refused from here on.
PAYMENT_STAGES: Final = frozenset({Stage.FUNDING, Stage.CONFIRMING, Stage.TRACKING})


class Rejection(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: RejectReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class PaymentPlan(BaseModel):
    """An order that passed every check the engine can make without the chain's balance: what to
    pay, where, from which configured chain and asset."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    chain: str
    chain_id: int
    asset: str
    token_address: str | None
    decimals: int
    amount: Decimal
    amount_base_units: int
    deposit_address: str
    # The paying hot wallet: a pool of one's at the check; for a larger pool "" until the payment
    # reports the wallet it reserved with (SellOrderWorkflow.payment_progress).
    hot_wallet: str
    needs_review: bool
    # Send nothing at or after this time: the provider's deadline less a margin for inclusion (a
    # deposit mined after the order expired is lost to a refund process). None: no deadline.
    pay_before: datetime | None = None


class PaymentOutcomeQuery(BaseModel):
    workflow_id: str
    missing_ok: bool = False


class CheckSellOrderInput(BaseModel):
    """`order` is the provider's order as its fetch activity returned it (for Kado a `KadoOrder`);
    the check maps it to the normalised snapshot with the provider's adapter."""

    order: Any
    request: SellOrderInput
    provider: str = DEFAULT_PROVIDER

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_old_defaults(handler(self))


class CheckResult(BaseModel):
    """Exactly one of `plan` (all checks passed) or `rejection`."""

    model_config = ConfigDict(frozen=True)

    plan: PaymentPlan | None = None
    rejection: Rejection | None = None


class TimelineEntry(BaseModel):
    at: datetime
    stage: Stage
    note: str = ""


class TxAttemptView(BaseModel):
    """One signed transaction for the order's nonce, as operators see it."""

    tx_hash: str
    nonce: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    status: str = ""


class OrderFacts(BaseModel):
    """What the provider said about the order, as last seen."""

    blockchain: str | None = None
    asset: str | None = None
    amount: Decimal | None = None
    deposit_address: str | None = None
    user_ref: str | None = None
    transfer_status: str | None = None
    machine_status: str | None = None
    human_status: str | None = None


class SellOrderState(BaseModel):
    """The `state` query: everything an operator needs to understand an order."""

    order_id: str
    stage: Stage
    needs_attention: bool = False
    attention_reason: str | None = None
    reason: str | None = None
    order: OrderFacts = Field(default_factory=OrderFacts)
    plan: PaymentPlan | None = None
    approved_by: str | None = None
    tx_hashes: list[str] = Field(default_factory=list)
    tx_attempts: list[TxAttemptView] = Field(default_factory=list)
    confirmed_tx_hash: str | None = None
    block_number: int | None = None
    provider_statuses: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)


class SellOrderResult(BaseModel):
    """The workflow's result."""

    order_id: str
    outcome: Stage
    reason: str | None = None
    reject_reason: RejectReason | None = None
    needs_attention: bool = False
    chain: str | None = None
    asset: str | None = None
    amount: Decimal | None = None
    amount_base_units: int | None = None
    deposit_address: str | None = None
    tx_hashes: list[str] = Field(default_factory=list)
    confirmed_tx_hash: str | None = None
    block_number: int | None = None
    started_at: datetime
    finished_at: datetime


class Decision(BaseModel):
    """Input of the `approve` / `reject` updates."""

    model_config = ConfigDict(frozen=True)

    operator: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=1000)


class TrackingCarry(BaseModel):
    """Where the following of a paid order stood when its run continued as new."""

    last_status: str | None = None
    deadline: datetime
    unknown_since: datetime | None = None


class OrderCarry(BaseModel):
    """What a run of the order workflow hands the next one at continue-as-new (internal: next to
    the input as `carry`, never part of the backends' contract). Before payment the next run
    starts over from the fetch, keeping its deadlines; after payment it goes on following."""

    state: SellOrderState
    started_at: datetime
    ready_deadline: datetime
    tracking: TrackingCarry | None = None
    attention_from_payment: bool = False
    runs: int = 1  # runs of this order so far, this one included
