"""Simulated orders: their state, how deposits and time move them, and the order data they serve.

Lifecycle ([ours], see `reference/providers.md`):

    awaiting_deposit ─deposit─▶ deposit_seen ─confirmations─▶ settling ─delay─▶ settled
         │                          │ (transferStatus pending from the deposit until settled)
         │ expiry, no deposit       │ total ≠ expected amount in base units
         ▼                          ▼
      expired                    failed (WRONG_AMOUNT); also WRONG_TOKEN (at the deposit),
      (transferStatus failed,    DEPOSIT_AFTER_EXPIRY (block time after expiry),
      ORDER_EXPIRED)             DISBURSEMENT_FAILED (scenario provider_failure)

Scenarios: `stuck_unknown` (transferStatus `unknown` forever once a deposit is seen),
`provider_failure` (failed after a correct, confirmed deposit), `slow_settlement` (a long settlement
delay, machineStatusField DELAYED_SETTLEMENT).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from offramp.chain.amounts import exact_base_units
from offramp.providers.kado.models import loads_exact
from offramp.simulator.faults import FaultConfig
from offramp.simulator.jsonx import deep_merge


class Scenario(StrEnum):
    NORMAL = "normal"
    STUCK_UNKNOWN = "stuck_unknown"
    PROVIDER_FAILURE = "provider_failure"
    SLOW_SETTLEMENT = "slow_settlement"


class Phase(StrEnum):
    AWAITING_DEPOSIT = "awaiting_deposit"
    DEPOSIT_SEEN = "deposit_seen"
    SETTLING = "settling"
    SETTLED = "settled"
    FAILED = "failed"
    EXPIRED = "expired"
    STUCK_UNKNOWN = "stuck_unknown"


class Failure(StrEnum):
    """machineStatusField of a failed order."""

    WRONG_AMOUNT = "WRONG_AMOUNT"
    WRONG_TOKEN = "WRONG_TOKEN"
    DEPOSIT_AFTER_EXPIRY = "DEPOSIT_AFTER_EXPIRY"
    DISBURSEMENT_FAILED = "DISBURSEMENT_FAILED"


TERMINAL_PHASES = frozenset({Phase.SETTLED, Phase.FAILED})


class Deposit(BaseModel):
    """A transfer to the deposit address seen on chain. `token` None: native coin."""

    model_config = ConfigDict(frozen=True)

    tx_hash: str
    log_index: int | None = None
    block_number: int
    block_timestamp: int
    token: str | None
    amount: int  # base units

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.tx_hash, self.log_index)


def new_order_id() -> str:
    """24 hex characters, like Kado's Mongo ids."""
    return secrets.token_hex(12)


def utcnow() -> datetime:
    return datetime.now(UTC)


def expiry_after(now: datetime, seconds: float) -> datetime:
    """`now + seconds`, rounded up to a whole second (block timestamps are whole seconds)."""
    when = now + timedelta(seconds=seconds)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SimOrder(BaseModel):
    """One order and everything the simulator knows about it (persisted in the data file)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str
    order_type: str = "sell"
    blockchain: str
    asset: str
    amount: Decimal | None  # whole units the user must send; None: never ready by itself
    decimals: int
    token_address: str | None  # None: the chain's native coin
    deposit_address: str
    user_ref: str | None = None
    wallet_address: str | None = None
    chain_id: int | None = None
    created_at: datetime
    expires_at: datetime
    ready_at: datetime  # the deposit address and amount are served from then on
    confirmations: int = 1
    settlement_delay_seconds: float = 2.0
    slow_settlement_seconds: float = 600.0
    scenario: Scenario = Scenario.NORMAL
    faults: FaultConfig | None = None
    # Served on top of the generated data (deep merge); kept as JSON text so numbers stay exact.
    overrides_json: str = "{}"
    # When set, served verbatim instead of any generated body.
    raw_body: str | None = None
    webhook_url: str | None = None

    phase: Phase = Phase.AWAITING_DEPOSIT
    failure: Failure | None = None
    deposits: list[Deposit] = Field(default_factory=list)
    settle_at: datetime | None = None
    # When it moved to SETTLED (the tick's time): where "settled → workflow done" starts.
    settled_at: datetime | None = None
    ready_announced: bool = False
    version: int = 0

    @property
    def expected_base_units(self) -> int | None:
        """The exact amount in base units; None when the amount cannot be paid exactly."""
        if self.amount is None:
            return None
        return exact_base_units(self.amount, self.decimals)

    @property
    def overrides(self) -> dict[str, Any]:
        value = loads_exact(self.overrides_json)
        return value if isinstance(value, dict) else {}

    def is_ready(self, now: datetime) -> bool:
        return now >= self.ready_at

    @property
    def watching(self) -> bool:
        """Deposits still matter (to settle, or to flag one after expiry)."""
        return self.phase not in TERMINAL_PHASES

    # ---- transitions (each returns True when what the order serves changed) -------------------

    def _moved(self, phase: Phase, failure: Failure | None = None) -> bool:
        self.phase = phase
        self.failure = failure
        self.version += 1
        return True

    def add_deposit(self, deposit: Deposit) -> bool:
        if any(d.key == deposit.key for d in self.deposits):
            return False
        self.deposits.append(deposit)
        self.version += 1
        if self.phase in TERMINAL_PHASES or self.phase is Phase.STUCK_UNKNOWN:
            return True
        # Block times are whole seconds and expiry is a whole second: a block stamped at or after
        # the expiry second was mined after it.
        if deposit.block_timestamp >= self.expires_at.timestamp():
            return self._moved(Phase.FAILED, Failure.DEPOSIT_AFTER_EXPIRY)
        if not self._right_token(deposit):
            return self._moved(Phase.FAILED, Failure.WRONG_TOKEN)
        if self.scenario is Scenario.STUCK_UNKNOWN:
            return self._moved(Phase.STUCK_UNKNOWN)
        # An order marked expired while the chain was behind gets its on-time deposit back.
        return self._moved(Phase.DEPOSIT_SEEN)

    def forget_deposits_after(self, block_number: int) -> bool:
        """A reorg removed the blocks after `block_number`: deposits in them never happened. An
        order still in progress goes back to waiting; settled and failed orders stay final (the
        provider already acted on them)."""
        kept = [d for d in self.deposits if d.block_number <= block_number]
        if len(kept) == len(self.deposits):
            return False
        self.deposits = kept
        self.version += 1
        if self.phase in (Phase.DEPOSIT_SEEN, Phase.SETTLING, Phase.STUCK_UNKNOWN):
            self.settle_at = None
            if kept and self.scenario is Scenario.STUCK_UNKNOWN:
                self.phase = Phase.STUCK_UNKNOWN
            else:
                self.phase = Phase.DEPOSIT_SEEN if kept else Phase.AWAITING_DEPOSIT
        return True

    def _right_token(self, deposit: Deposit) -> bool:
        if self.token_address is None:
            return deposit.token is None
        return deposit.token is not None and deposit.token.lower() == self.token_address.lower()

    def advance(self, now: datetime, head_block: int | None) -> bool:
        """Move by time and confirmations. `head_block`: the last block the watcher processed."""
        changed = False
        if not self.ready_announced and self.is_ready(now):
            self.ready_announced = True
            self.version += 1
            changed = True
        if self.phase is Phase.AWAITING_DEPOSIT and now >= self.expires_at:
            changed = self._moved(Phase.EXPIRED)
        if self.phase is Phase.DEPOSIT_SEEN and head_block is not None:
            last_block = max(d.block_number for d in self.deposits)
            if head_block - last_block + 1 >= self.confirmations:
                total = sum(d.amount for d in self.deposits if self._right_token(d))
                if total != self.expected_base_units:
                    changed = self._moved(Phase.FAILED, Failure.WRONG_AMOUNT)
                elif self.scenario is Scenario.PROVIDER_FAILURE:
                    changed = self._moved(Phase.FAILED, Failure.DISBURSEMENT_FAILED)
                else:
                    slow = self.scenario is Scenario.SLOW_SETTLEMENT
                    delay = self.slow_settlement_seconds if slow else self.settlement_delay_seconds
                    self.settle_at = now + timedelta(seconds=delay)
                    changed = self._moved(Phase.SETTLING)
        if self.phase is Phase.SETTLING and self.settle_at is not None and now >= self.settle_at:
            changed = self._moved(Phase.SETTLED)
            self.settled_at = now
        return changed

    # ---- what the public route serves --------------------------------------------------------

    def _statuses(self, now: datetime) -> tuple[str, str | None, str, str]:
        """transferStatus, providerDisbursementStatus, machineStatusField, humanStatusField."""
        phase = self.phase
        if phase is Phase.AWAITING_DEPOSIT:
            if not self.is_ready(now):
                return "uninitiated", None, "AWAITING_DEPOSIT_ADDRESS", "Preparing your order"
            return "uninitiated", "pending", "PENDING_PAYMENT", "Waiting for your deposit"
        if phase is Phase.DEPOSIT_SEEN:
            return "pending", "processing", "DEPOSIT_RECEIVED", "Deposit received, confirming"
        if phase is Phase.SETTLING:
            if self.scenario is Scenario.SLOW_SETTLEMENT:
                return "pending", "processing", "DELAYED_SETTLEMENT", "Settlement is delayed"
            return "pending", "processing", "PENDING_SETTLEMENT", "Settling your payout"
        if phase is Phase.SETTLED:
            return "settled", "completed", "SETTLED", "Your payout is complete"
        if phase is Phase.EXPIRED:
            return "failed", "expired", "ORDER_EXPIRED", "The order expired before a deposit"
        if phase is Phase.STUCK_UNKNOWN:
            return "unknown", "processing", "UNKNOWN", "Transfer status unknown"
        failure = self.failure.value if self.failure else "FAILED"
        return "failed", "failed", failure, f"The order failed ({failure.lower()})"

    def served_data(self, now: datetime) -> dict[str, Any]:
        transfer, disbursement, machine, human = self._statuses(now)
        ready = self.is_ready(now)
        pay_amount: dict[str, Any] = {"unit": self.asset}
        if ready and self.amount is not None:
            pay_amount = {"amount": self.amount, "unit": self.asset}
        data: dict[str, Any] = {
            "id": self.id,
            "orderType": self.order_type,
            "blockchain": self.blockchain,
            "asset": self.asset,
            "assetSymbol": self.asset,
            "userRef": self.user_ref,
            "walletAddress": self.wallet_address,
            "manualDepositMemo": None,
            "payAmount": pay_amount,
            "recvAmount": {"amount": self._fiat(Decimal("0.99")), "unit": "USD"},
            "totalFee": {"amount": self._fiat(Decimal("0.01")), "unit": "USD"},
            "bridgeFee": [],
            "smartContractFees": [],
            "cryptoCurrency": {
                "symbol": self.asset,
                "address": self.token_address,
                "isNative": self.token_address is None,
                "decimals": self.decimals,
                "officialChainId": self.chain_id,
            },
            "paymentStatus": None,
            "transferStatus": transfer,
            "providerDisbursementStatus": disbursement,
            "machineStatusField": machine,
            "humanStatusField": human,
            "txHash": self.deposits[-1].tx_hash if self.deposits else "",
            "allPossibleTxHashes": {"deposits": [d.tx_hash for d in self.deposits]},
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at),
            "settlementTimeInSeconds": self.settlement_delay_seconds,
        }
        if ready:
            data["depositAddress"] = self.deposit_address
        return deep_merge(data, self.overrides)

    def _fiat(self, share: Decimal) -> Decimal | None:
        # Illustrative only (1 unit = 1 USD): the simulator does not quote prices.
        if self.amount is None:
            return None
        try:
            return (self.amount * share).quantize(Decimal("0.01"))
        except ArithmeticError:
            return None

    def admin_view(self, now: datetime) -> dict[str, Any]:
        view = self.model_dump(mode="json", exclude={"overrides_json"})
        view["overrides"] = self.overrides
        view["expected_base_units"] = self.expected_base_units
        view["ready"] = self.is_ready(now)
        view["deposited_base_units"] = sum(d.amount for d in self.deposits)
        return view
