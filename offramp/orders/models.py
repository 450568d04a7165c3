"""The sell-order contract: workflow input, stages, state and result (JSON via pydantic).

These models are the documented interface for wallet backends in any language (a JSON Schema is
generated from them). Imports no I/O library, so workflows can use them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from offramp.kado.models import KadoOrder, validate_address

WORKFLOW_TYPE: Final = "SellOrderWorkflow"
CHECK_SELL_ORDER_ACTIVITY: Final = "check_sell_order"
PAYMENT_OUTCOME_ACTIVITY: Final = "payment_outcome"
# Error type of PAYMENT_OUTCOME_ACTIVITY: the payment workflow closed without a result.
PAYMENT_CLOSED_WITHOUT_OUTCOME: Final = "PaymentClosedWithoutOutcome"
WORKFLOW_ID_PREFIX: Final = "kado-sell-"
ORDER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_ORDER_ID_RE: Final = re.compile(ORDER_ID_PATTERN)


def workflow_id_for(order_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{order_id}"


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

    @model_validator(mode="after")
    def _bound_to_requester(self) -> SellOrderInput:
        if self.user_ref is None and self.wallet_address is None:
            raise ValueError("give user_ref and/or wallet_address: the order must be bound")
        return self

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.order_id)


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


class RejectReason(StrEnum):
    """Why an order was rejected before anything was sent. Stable codes for backends."""

    ORDER_NOT_FOUND = "order_not_found"
    ORDER_MALFORMED = "order_malformed"
    PROVIDER_REFUSED = "provider_refused"
    NOT_A_SELL_ORDER = "not_a_sell_order"
    USER_REF_MISMATCH = "user_ref_mismatch"
    WALLET_MISMATCH = "wallet_address_mismatch"
    UNSUPPORTED_CHAIN = "unsupported_chain"
    CHAIN_ID_MISMATCH = "chain_id_mismatch"
    ASSET_NOT_ALLOWED = "asset_not_allowed"
    TOKEN_ADDRESS_MISMATCH = "token_address_mismatch"
    TOKEN_DECIMALS_MISMATCH = "token_decimals_mismatch"
    AMOUNT_INVALID = "amount_invalid"
    AMOUNT_TOO_PRECISE = "amount_too_precise"
    OVER_ORDER_CAP = "over_per_order_cap"
    OVER_MAX_AMOUNT = "over_max_amount"
    DEPOSIT_ADDRESS_INVALID = "deposit_address_invalid"
    DEPOSIT_ADDRESS_OURS = "deposit_address_is_our_wallet"
    ORDER_FAILED = "order_failed"
    ORDER_EXPIRED = "order_expired"
    ORDER_NOT_READY = "order_not_ready"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    TRANSFER_WOULD_FAIL = "transfer_would_fail"
    PAYMENT_REJECTED = "payment_rejected"
    NOT_APPROVED = "not_approved"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    ORDER_CHANGED = "order_changed_after_approval"
    # The order's own fields disagree (self-consistency, checked before any nonce is taken).
    ASSET_SYMBOL_MISMATCH = "asset_symbol_mismatch"
    AMOUNT_UNIT_MISMATCH = "amount_unit_mismatch"
    NATIVE_FLAG_MISMATCH = "native_flag_mismatch"
    # The provider reports the crypto already in transit or received, and we have not paid.
    ORDER_ALREADY_FUNDED = "order_already_funded"


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


class PaymentOutcomeQuery(BaseModel):
    workflow_id: str
    missing_ok: bool = False


class CheckSellOrderInput(BaseModel):
    order: KadoOrder
    request: SellOrderInput


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
