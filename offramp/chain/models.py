"""Models shared by the payment workflows, the hot-wallet entity and the chain activities.

Plain pydantic: imported by workflow code (passed through the sandbox) and by activities alike.
Money is exact: `Decimal` whole units in requests, `int` base units (wei, token units) on chain.
No private key ever appears in any of these models.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from offramp.rejections import RejectReason

PAYMENT_WORKFLOW_ID_PREFIX = "payment-"


def payment_workflow_id(payment_id: str) -> str:
    """The payment child's workflow id (duplicates are refused, so a payment never starts twice)."""
    return f"{PAYMENT_WORKFLOW_ID_PREFIX}{payment_id}"


def hot_wallet_workflow_id(chain_id: int, address: str, suffix: str = "") -> str:
    base = f"hot-wallet-{chain_id}-{address}"
    return f"{base}-{suffix}" if suffix else base


def nonce_fill_workflow_id(wallet_workflow_id: str, nonce: int) -> str:
    return f"{wallet_workflow_id}-fill-{nonce}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _drop_unset(data: Any, model: BaseModel, names: tuple[str, ...]) -> Any:
    """Leave out fields still at their empty default: payloads keep the shape they had before
    the field existed, which an old worker (`extra="forbid"`) decodes during a rolling deploy."""
    if isinstance(data, dict):
        for name in names:
            if not getattr(model, name):
                data.pop(name, None)
    return data


# --- The public contract: what an order workflow sends and gets back -------------------------


class PaymentRequest(_Model):
    """Pay `amount` of `asset` on `chain` to `recipient`, exactly once per `payment_id`."""

    payment_id: str = Field(
        min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$", description="idempotency key"
    )
    chain: str = Field(min_length=1, description="key of EngineSettings.chains, e.g. 'anvil'")
    asset: str = Field(min_length=1, description="asset symbol in the chain config, e.g. 'USDC'")
    recipient: str = Field(description="0x address; checked strictly before any nonce is taken")
    amount: Decimal = Field(description="whole units, e.g. Decimal('12.5') USDC")
    forbidden_recipients: list[str] = Field(
        default_factory=list, description="addresses that must not receive (besides hot wallets)"
    )
    expected_token_address: str | None = Field(
        default=None, description="if given, must equal the configured token contract"
    )
    progress_signal: str | None = Field(
        default=None,
        description="run as a child: the parent gets this signal with a PaymentProgress when the "
        "nonce is reserved (from then on a tx may exist), at each new hash and on attention",
    )
    pay_before: datetime | None = Field(
        default=None,
        description="sign nothing at or after this time (the provider's deadline less a margin): "
        "refused before a nonce, or the nonce released unsigned if it came later",
    )


class PaymentStatus(StrEnum):
    CONFIRMED = "confirmed"
    """Mined with status 1, the configured confirmations reached on the canonical chain."""
    REVERTED = "reverted"
    """Mined with status 0: the nonce is used, no value moved (needs attention)."""
    REJECTED = "rejected"
    """Refused before anything was signed: nothing was or ever will be sent (a nonce granted
    past the payment's `pay_before` is released, and filled, unsigned)."""
    CANCELLED = "cancelled"
    """Cancelled before anything was signed; a reserved nonce (if any) was released (filled)."""
    NONCE_CONFLICT = "nonce_conflict"
    """Our nonce was used by a transaction that is not ours: none of ours can be mined any more
    (needs attention: it is never re-signed at another nonce automatically)."""
    TRANSFER_MISMATCH = "transfer_mismatch"
    """Mined with status 1 but without the exact Transfer log expected (needs attention)."""

    @property
    def needs_attention(self) -> bool:
        return self in (
            PaymentStatus.REVERTED,
            PaymentStatus.NONCE_CONFLICT,
            PaymentStatus.TRANSFER_MISMATCH,
        )


# The payment's refusals use the one rejection vocabulary (offramp/rejections.py); the old name
# stays importable.
RejectionCode = RejectReason


class TxFields(_Model):
    """Every field of an EIP-1559 transaction: fixed in history before signing, so a retried
    sign-and-broadcast yields the same bytes and hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int
    nonce: int = Field(ge=0)
    to: str
    value: int = Field(ge=0)
    data: str = "0x"
    gas: int = Field(gt=0)
    max_fee_per_gas: int = Field(gt=0)
    max_priority_fee_per_gas: int = Field(ge=0)


class TxAttempt(_Model):
    """One signed version of the transaction at our nonce (the first, or a fee bump)."""

    fields: TxFields
    tx_hash: str
    broadcasts: int = 1
    last_result: str = ""
    created_at: datetime


class PaymentOutcome(_Model):
    payment_id: str
    status: PaymentStatus
    reason: str | None = None
    rejection_code: RejectReason | None = None
    chain: str
    chain_id: int | None = None
    asset: str
    recipient: str
    amount: Decimal
    amount_base_units: int | None = None
    token_address: str | None = None
    hot_wallet: str | None = None
    nonce_reserved: bool = False
    nonce: int | None = None
    tx_hash: str | None = Field(default=None, description="the mined hash, if any")
    tx_hashes: list[str] = Field(default_factory=list, description="every hash signed")
    block_number: int | None = None
    block_hash: str | None = None
    confirmations: int | None = None
    gas_used: int | None = None
    fee_paid_wei: int | None = None

    @property
    def needs_attention(self) -> bool:
        return self.status.needs_attention


class PaymentProgress(_Model):
    """Sent to the parent (see PaymentRequest.progress_signal) at each milestone."""

    payment_id: str
    stage: str
    nonce_reserved: bool
    tx_may_exist: bool
    nonce: int | None = None
    tx_hashes: list[str] = Field(default_factory=list)
    tx_hash: str | None = Field(default=None, description="the latest signed hash")
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    needs_attention: bool = False
    attention_reason: str | None = None
    hot_wallet: str | None = Field(
        default=None, description="the pool wallet the payment reserves (or waits) with"
    )


class PaymentStage(StrEnum):
    PREFLIGHT = "preflight"
    RESERVING = "reserving_nonce"
    SENDING = "sending"
    CONFIRMING = "confirming"
    DONE = "done"


class PaymentState(_Model):
    """What the payment's `state` query returns."""

    payment_id: str
    stage: PaymentStage = PaymentStage.PREFLIGHT
    nonce_reserved: bool = Field(default=False, description="a nonce is (or was) held")
    tx_may_exist: bool = Field(
        default=False, description="a tx was handed to the signer: it may be on chain"
    )
    nonce: int | None = None
    hot_wallet: str | None = None
    hot_wallet_workflow_id: str | None = None
    attempts: list[TxAttempt] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    needs_attention: bool = False
    attention_reason: str | None = None
    outcome: PaymentOutcome | None = None

    @property
    def tx_hashes(self) -> list[str]:
        return [a.tx_hash for a in self.attempts]


# --- Activity inputs and outputs ----------------------------------------------------------------


class SendTuning(_Model):
    """Per-chain sending settings, copied from ChainConfig into history by the preflight."""

    confirmations: int
    max_fee_per_gas_cap_wei: int
    bump_after_seconds: float
    poll_interval_seconds: float
    rpc_timeout_seconds: float
    in_flight_limit: int
    reservation_timeout_seconds: float


class TxTemplate(_Model):
    """Everything of the transaction except nonce and fees."""

    to: str
    value: int
    data: str = "0x"
    gas: int


class TransferExpectation(_Model):
    """What the receipt must show: for a token, exactly this Transfer log."""

    token_address: str | None
    sender: str
    recipient: str
    amount_base_units: int


class PreflightAccepted(_Model):
    chain_id: int
    hot_wallet: str
    hot_wallet_workflow_id: str
    recipient: str
    asset: str
    token_address: str | None
    decimals: int
    amount_base_units: int
    daily_cap_base_units: int
    template: TxTemplate
    tuning: SendTuning
    resume_attempts: list[TxAttempt] = Field(
        default_factory=list,
        description="a previous run of this payment already signed these (from the hot wallet): "
        "follow them instead of checking balances again and sending anew",
    )


class PreflightResult(_Model):
    accepted: PreflightAccepted | None = None
    rejection_code: RejectReason | None = None
    reason: str | None = None


class FeeQuote(_Model):
    base_fee_per_gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


class WalletNonces(_Model):
    latest: int
    pending: int


class BroadcastKind(StrEnum):
    SENT = "sent"
    ALREADY_KNOWN = "already_known"
    NONCE_TOO_LOW = "nonce_too_low"
    UNDERPRICED = "replacement_underpriced"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FEE_BELOW_BASE = "fee_below_base"


class BroadcastInput(_Model):
    chain: str
    fields: TxFields
    sender: str | None = Field(
        default=None,
        description="the pool wallet whose key signs; None (histories before pools): the "
        "wallet in the calling Payment's state (never guessed)",
    )


class WalletNoncesInput(_Model):
    """`read_wallet_nonces` for one pool wallet (a bare chain name reads the first wallet's)."""

    chain: str
    address: str


class BroadcastResult(_Model):
    tx_hash: str
    kind: BroadcastKind
    message: str = ""


class AwaitKind(StrEnum):
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    TRANSFER_MISMATCH = "transfer_mismatch"
    STUCK = "stuck"
    DROPPED = "dropped"
    REORGED = "reorged"
    NONCE_CONFLICT = "nonce_conflict"


class AwaitInput(_Model):
    chain: str
    sender: str
    nonce: int
    tx_hashes: list[str]
    confirmations: int
    poll_interval_seconds: float
    stuck_after_seconds: float | None = Field(description="None: never report STUCK")
    expectation: TransferExpectation | None = None
    # Past the payment's bound on history-growing retries (workflows/payment.py): the activity
    # itself re-sends these fields (an attempt already in history, so the same signed bytes) at
    # most every `resend_every_seconds` while the node does not know the tx, and never returns
    # DROPPED or REORGED: the wait goes on without adding to the history.
    resend: TxFields | None = None
    resend_every_seconds: float | None = Field(default=None, gt=0)


class AwaitResult(_Model):
    kind: AwaitKind
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    effective_gas_price: int | None = None
    detail: str = ""


# --- The hot-wallet entity ----------------------------------------------------------------------


class ReservationKind(StrEnum):
    PAYMENT = "payment"
    FILL = "fill"


class ReservationStatus(StrEnum):
    RESERVED = "reserved"  # nonce handed out, nothing known to be broadcast
    BROADCAST = "broadcast"  # at least one hash broadcast
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    CONFLICT = "conflict"  # the nonce was used by a tx that is not the payment's
    ABANDONED = "abandoned"  # will never send: a 0-value self-transfer fills the nonce
    FILLED = "filled"

    @property
    def final(self) -> bool:
        return self in (
            ReservationStatus.CONFIRMED,
            ReservationStatus.REVERTED,
            ReservationStatus.CONFLICT,
            ReservationStatus.FILLED,
        )


class Reservation(_Model):
    payment_id: str
    nonce: int
    kind: ReservationKind = ReservationKind.PAYMENT
    asset: str
    amount_base_units: int
    day: str
    status: ReservationStatus = ReservationStatus.RESERVED
    reserved_at: datetime
    updated_at: datetime
    payment_workflow_id: str | None = None
    tx_hashes: list[str] = Field(default_factory=list)
    fill_workflow_id: str | None = None
    note: str = ""
    checked_at: datetime | None = Field(
        default=None, description="last time its payment workflow was found still running"
    )
    attempts: list[TxAttempt] = Field(
        default_factory=list, description="every signed version (fields + hash) for the nonce"
    )
    # What the reservation holds of the wallet's funds until it is final (admission, item 4);
    # zero for reservations made through the old `reserve` update.
    token_address: str | None = None
    native_value_wei: int = 0
    gas_budget_wei: int = 0


class RecentReservation(_Model):
    """A final reservation after it left the open set: kept (bounded) so that a re-run of its
    payment gets the same nonce and the nonce's fate, never a new nonce."""

    nonce: int
    status: ReservationStatus
    tx_hashes: list[str] = Field(default_factory=list)
    updated_at: datetime
    attempt: TxAttempt | None = Field(
        default=None, description="the mined (else the last) signed version, for a re-run"
    )


class InsufficientFunds(StrEnum):
    WAIT = "wait"  # hold the payment without a nonce (NeedsAttention) until a top-up
    REJECT = "reject"  # end it REJECTED insufficient_balance


class WalletPolicy(_Model):
    """Chain settings the entity applies to admission (the latest request's copy wins)."""

    on_insufficient_funds: InsufficientFunds = InsufficientFunds.WAIT
    funds_recheck_seconds: float = 30.0


class WalletBalances(_Model):
    native_wei: int
    tokens: dict[str, int] = Field(
        default_factory=dict, description="lower-case token address -> base units"
    )
    read_at: datetime | None = None


class BalancesInput(_Model):
    chain: str
    address: str
    tokens: list[str] = Field(default_factory=list)


class HotWalletLimits(_Model):
    """The entity's budgets and limits. Workflow logic, so they travel in its input (a module
    constant changed under a running entity would not replay): an input from before this model
    has none and gets these defaults, the values it ran with."""

    # Final reservations kept for re-runs of their payments (~700 B each: ~0.7 MB at the cap).
    recent_limit: int = Field(default=1_000, ge=1)
    # Continue-as-new well below the server's limits (50K events / 50 MB; 2 MB per payload).
    history_events_budget: int = Field(default=4_000, ge=1)
    history_bytes_budget: int = Field(default=4 * 1024 * 1024, ge=1)
    # The continue-as-new input stays below this (a quarter of the default 2 MB payload limit):
    # the oldest final reservations leave the index first.
    state_bytes_budget: int = Field(default=512 * 1024, ge=1)
    # The index has a budget of its own, so a long queue never empties it (~700 B per entry).
    recent_bytes_budget: int = Field(default=320 * 1024, ge=1)
    # Queued requests (~300 B each) beyond this are told to ask again later: the queue stays
    # within ~150 KB of the continue-as-new input whatever the load.
    queue_limit: int = Field(default=500, ge=1)
    retry_later_seconds: float = Field(default=30.0, gt=0)
    # Payments beyond the queue wait on a waitlist (~100 B each) and are called back when the
    # queue is half empty; beyond the waitlist they ask again after retry_later_seconds.
    waitlist_limit: int = Field(default=1_500, ge=0)
    # A waitlisted payment asks again by itself after this (a call-back lost to a crash).
    call_back_timeout_seconds: float = Field(default=600.0, gt=0)
    # While payments wait for funds the balances are re-read at funds_recheck_seconds, doubling
    # up to this while nobody tops up.
    funds_recheck_max_seconds: float = Field(default=15 * 60.0, gt=0)


class HotWalletParams(_Model):
    chain: str
    chain_id: int
    address: str
    tuning: SendTuning
    limits: HotWalletLimits = Field(default_factory=HotWalletLimits)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Written only when not the defaults: the payloads stay as before this field, and an old
        # worker (`extra="forbid"`) decodes them during a rolling deploy.
        data = handler(self)
        if isinstance(data, dict) and self.limits == HotWalletLimits():
            data.pop("limits", None)
        return data


class HotWalletState(_Model):
    next_nonce: int | None = None
    paused: bool = False
    pause_reason: str | None = None
    reservations: dict[str, Reservation] = Field(default_factory=dict)
    spent: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="UTC day -> asset -> base units reserved"
    )
    chain_nonces: WalletNonces | None = None
    reconciled_at: datetime | None = None
    attention: list[str] = Field(default_factory=list)
    runs: int = 1
    log: list[str] = Field(default_factory=list)
    # Bounded state (new in v2; an old continued-as-new input has none of these and decodes).
    recent: dict[str, RecentReservation] = Field(
        default_factory=dict, description="payment id -> final reservation, oldest first, capped"
    )
    evicted_until: datetime | None = Field(
        default=None, description="final reservations updated up to this left `recent`"
    )
    queue: list[NonceRequest] = Field(
        default_factory=list, description="nonce requests waiting for room or funds, in order"
    )
    balances: WalletBalances | None = None
    debited_since_read: dict[str, int] = Field(
        default_factory=dict,
        description="funds of reservations final since the balance read (may still be in it)",
    )
    policy: WalletPolicy = Field(default_factory=WalletPolicy)
    funds_waiting: list[str] = Field(
        default_factory=list, description="queued payment ids already told 'insufficient funds'"
    )
    nonce_behind: WalletNonces | None = Field(
        default=None, description="the chain's nonce was below ours with nothing open: a person"
    )
    funds_recheck_seconds: float | None = Field(
        default=None,
        description="while payments wait for funds: the current re-read interval (doubles, capped)",
    )
    answers: list[PendingAnswer] = Field(
        default_factory=list,
        description="answers not yet sent when the previous run continued as new: sent first",
    )
    waitlist: dict[str, str] = Field(
        default_factory=dict,
        description="payment id -> workflow id of payments told the queue is full, to call back "
        "when it has room, oldest first",
    )

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _drop_unset(handler(self), self, ("waitlist",))

    def in_flight(self) -> int:
        return sum(
            1
            for r in self.reservations.values()
            if r.kind is ReservationKind.PAYMENT and not r.status.final
        )


class HotWalletInput(_Model):
    params: HotWalletParams
    state: HotWalletState | None = None


class NonceRequest(_Model):
    """A payment asks the entity for its nonce (signal `request_nonce`, idempotent by payment
    id); the entity answers with the signal `nonce_answer` (NonceAnswer) to the payment."""

    payment_id: str
    payment_workflow_id: str
    asset: str
    amount_base_units: int = Field(ge=0)
    daily_cap_base_units: int = Field(ge=0)
    token_address: str | None = None
    native_value_wei: int = Field(default=0, ge=0)
    gas_budget_wei: int = Field(default=0, ge=0, description="gas limit x the fee cap")
    rerun: bool = Field(default=False, description="not the payment's first run")
    first_started_at: datetime | None = Field(
        default=None,
        description="a re-run: when the payment's first run started (None: unknown); the "
        "entity grants a re-run a new nonce only if no reservation of it can have left its index",
    )
    policy: WalletPolicy | None = Field(
        default=None, description="set by the request_nonce activity; not kept in the queue"
    )
    wakeable: bool = Field(
        default=False,
        description="the payment waits to be called back when the queue is full (call_back)",
    )

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _drop_unset(handler(self), self, ("wakeable",))


class NonceAnswerKind(StrEnum):
    GRANTED = "granted"
    WAITING_FUNDS = "waiting_funds"  # not final: the payment keeps waiting
    REJECTED = "rejected"
    RELEASED = "released"  # the payment gave its nonce back earlier: it can never send
    # A re-run the entity cannot prove never held a nonce (its reservation may have left the
    # bounded index): never a new nonce; the payment flags a person and waits.
    NEEDS_PERSON = "needs_person"
    RETRY_LATER = "retry_later"  # the queue is full: ask again after `retry_after_seconds`


class NonceAnswer(_Model):
    payment_id: str
    kind: NonceAnswerKind
    nonce: int | None = None
    settled: ReservationStatus | None = Field(
        default=None, description="the nonce is already final (a re-run of a settled payment)"
    )
    tx_hashes: list[str] = Field(default_factory=list)
    rejection_code: RejectReason | None = None
    reason: str | None = None
    wallet_workflow_id: str | None = Field(
        default=None, description="the answering entity: a payment ignores other wallets' answers"
    )
    retry_after_seconds: float | None = None
    # RETRY_LATER to a wakeable payment: it is on the wallet's waitlist and is called back (a
    # RETRY_LATER with retry_after_seconds 0: "ask again now") when the queue has room;
    # retry_after_seconds is then only the longest it waits before asking again by itself.
    call_back: bool = False

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _drop_unset(handler(self), self, ("call_back",))


class PendingAnswer(_Model):
    """An answer the entity owes a payment, carried across continue-as-new."""

    payment_workflow_id: str
    answer: NonceAnswer


class PaymentLookup(_Model):
    """What a wallet entity knows of a payment (query `payment_lookup`, for a re-run's
    preflight): its reservation (possibly without attempts yet) or that it is queued."""

    reservation: Reservation | None = None
    queued: bool = False


class NonceRequestInput(_Model):
    """Activity input: signal-with-start `request_nonce` on the hot-wallet entity."""

    params: HotWalletParams
    wallet_workflow_id: str
    request: NonceRequest


class SetNonceRequest(_Model):
    """Operator: move next_nonce (the only way it ever goes down)."""

    nonce: int = Field(ge=0)
    reason: str = Field(min_length=3, max_length=500)


class WalletSummary(_Model):
    """What operator updates return (small: never the whole state into history)."""

    next_nonce: int | None
    paused: bool
    pause_reason: str | None = None
    in_flight: int
    queued: int
    runs: int
    chain_nonces: WalletNonces | None = None
    nonce_behind: WalletNonces | None = None
    attention: list[str] = Field(default_factory=list, description="the latest few lines")


class ReserveRequest(_Model):
    payment_id: str
    asset: str
    amount_base_units: int = Field(ge=0)
    daily_cap_base_units: int = Field(ge=0)
    payment_workflow_id: str | None = None


class ReserveResult(_Model):
    nonce: int
    new: bool


class NonceReserveInput(_Model):
    """Activity input: reserve through update-with-start on the hot-wallet entity."""

    params: HotWalletParams
    wallet_workflow_id: str
    request: ReserveRequest


class NonceReserveOutcome(_Model):
    nonce: int | None = None
    rejection_code: RejectReason | None = None
    reason: str | None = None


class TxBroadcastSignal(_Model):
    payment_id: str
    nonce: int
    tx_hash: str
    fields: TxFields | None = None


class NonceSettledSignal(_Model):
    payment_id: str
    nonce: int
    status: ReservationStatus
    tx_hash: str | None = None
    note: str = ""


class ReleaseSignal(_Model):
    payment_id: str
    reason: str


class FillRequest(_Model):
    chain: str
    chain_id: int
    hot_wallet: str
    nonce: int
    fill_id: str
    wallet_workflow_id: str
    tuning: SendTuning


class FillOutcome(_Model):
    nonce: int
    status: ReservationStatus
    tx_hash: str | None = None
    tx_hashes: list[str] = Field(default_factory=list)
    note: str = ""


class WorkflowClosedInput(_Model):
    workflow_id: str


HotWalletState.model_rebuild()
HotWalletInput.model_rebuild()
