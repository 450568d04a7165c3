"""The normalised view of a provider's order: what the engine checks, pays and follows.

Each adapter maps its own order (wire model) to an `OrderSnapshot` with a pure function, so the
checks, the order workflow and the operator surface never read a provider's fields. Imports no
I/O library: workflows use it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Phase(StrEnum):
    """Where the order is, in the engine's terms."""

    NOT_READY = "not_ready"  # no deposit instruction yet
    AWAITING_DEPOSIT = "awaiting_deposit"  # ready for our payment
    PROCESSING = "processing"  # the provider sees the crypto moving or arrived
    SETTLED = "settled"
    FAILED = "failed"
    EXPIRED = "expired"
    NEEDS_PERSON = "needs_person"  # the provider lost track (e.g. Kado's `unknown`)


class OrderKind(StrEnum):
    SELL = "sell"
    BUY = "buy"
    UNKNOWN = "unknown"


class FieldLabels(BaseModel):
    """The provider's own names of the fields a rejection talks about (an operator then finds
    the field in the provider's order). Defaults are the engine's names."""

    model_config = ConfigDict(frozen=True)

    kind: str = "kind"
    user_ref: str = "user_ref"
    wallet_address: str = "wallet_address"
    chain: str = "chain"
    chain_id: str = "chain_id"
    amount: str = "amount"
    amount_unit: str = "amount_unit"
    deposit_address: str = "deposit_address"
    token_address: str = "token_address"
    decimals: str = "decimals"
    is_native: str = "is_native"
    status: str = "status"
    status_code: str = "status_code"


class Identity(BaseModel):
    """Who the order belongs to: bound to the requester before anything else is checked."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    kind: OrderKind | None = None
    user_ref: str | None = None
    wallet_address: str | None = None


class PaymentInstruction(BaseModel):
    """What the provider asks us to send. Every field is checked against our configuration;
    none of them picks a contract or a chain on its own."""

    model_config = ConfigDict(frozen=True)

    chain: str | None = None  # lower-case chain name as the provider spells it
    chain_id: int | None = None  # the provider's chain id, when it gives one
    # Every asset symbol the order names, by the provider's field name (they must agree).
    asset_names: dict[str, str] = Field(default_factory=dict)
    asset: str | None = None  # the symbol shown to operators
    token_address: str | None = None
    decimals: int | None = None
    is_native: bool | None = None
    amount: Decimal | None = None
    amount_unit: str | None = None
    deposit_address: str | None = None
    memo: str | None = None
    deadline: str | None = None  # the provider's own expiry text, when it gives one


class OrderSnapshot(BaseModel):
    """One provider order, normalised. The flags are the adapter's exact reading of the
    provider's statuses; `phase` summarises them for people and search."""

    model_config = ConfigDict(frozen=True)

    provider: str
    identity: Identity
    instruction: PaymentInstruction = Field(default_factory=PaymentInstruction)
    # The provider's own status (e.g. Kado's transferStatus), its machine code and its text.
    status: str | None = None
    status_code: str | None = None
    status_text: str | None = None
    ready: bool = False
    settled: bool = False
    failed: bool = False
    expired: bool = False
    status_unknown: bool = False
    # Why it is not ready for the deposit (empty when it is), in the provider's field names.
    missing_for_deposit: list[str] = Field(default_factory=list)
    # What says the crypto is already moving or arrived, though we have not paid (None: nothing).
    funded_evidence: str | None = None
    labels: FieldLabels = Field(default_factory=FieldLabels)

    @property
    def order_id(self) -> str:
        return self.identity.order_id

    @property
    def terminal(self) -> bool:
        return self.settled or self.failed

    @property
    def phase(self) -> Phase:
        if self.expired:
            return Phase.EXPIRED
        if self.failed:
            return Phase.FAILED
        if self.settled:
            return Phase.SETTLED
        if self.ready:
            return Phase.AWAITING_DEPOSIT
        if self.funded_evidence is not None:
            return Phase.PROCESSING
        if self.status_unknown:
            return Phase.NEEDS_PERSON
        return Phase.NOT_READY

    @property
    def shown_status(self) -> str:
        return self.status or "missing"
