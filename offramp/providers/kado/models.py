"""Kado order-status models: what `GET /v2/public/orders/{orderId}` returns, typed.

Tolerant where the provider is loose (unknown fields are ignored; an unrecognised value of any
status enum becomes `UNKNOWN` and is kept verbatim in `unrecognised`), strict where money and
addresses matter (`payAmount.amount`, `depositAddress`, `cryptoCurrency.address/decimals`).

Money is never a float: `parse_order_json` reads the JSON text with `parse_float=Decimal`, and a
wire-parsed `payAmount.amount` must be a JSON number. The same models are activity results, so they
also accept their own serialised form (the Temporal pydantic converter writes Decimal as a string).

This module imports no I/O library: workflows may import it (inside
`workflow.unsafe.imports_passed_through()`, because of eth_utils).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Final

from eth_utils.crypto import keccak
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from offramp.chain.addresses import validate_address as validate_address
from offramp.chain.amounts import exact_base_units

# eth_hash imports its keccak backend on first use, and the workflow sandbox refuses that import:
# a workflow checking an EIP-55 address would fail. Load it here, when workflows import this
# module (outside the sandbox), so every process that runs or replays workflows has it.
keccak(b"")

# Activity names: a workflow may call them by name without importing the activity module.
FETCH_ORDER_ACTIVITY: Final = "kado_fetch_order"
WAIT_FOR_ORDER_CHANGE_ACTIVITY: Final = "kado_wait_for_order_change"

# A context key: set when validating a provider response (JSON text parsed by `parse_order_json`).
WIRE_CONTEXT: Final = {"kado_wire": True}

# No order pays anything near this many whole units; above it the value is garbage, not money.
MAX_PAY_AMOUNT: Final = Decimal(10) ** 15
# More significant digits than any real amount carries (18 decimals + 15 integer digits + margin).
MAX_AMOUNT_DIGITS: Final = 40
MAX_FRACTION_DIGITS: Final = 36
ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"


class TransferStatus(StrEnum):
    """[doc] on-chain transfer status. Unrecognised values parse as UNKNOWN."""

    UNINITIATED = "uninitiated"
    PENDING = "pending"
    FAILED = "failed"
    SETTLED = "settled"
    UNKNOWN = "unknown"


class PaymentStatus(StrEnum):
    """[doc] fiat payment status (may be null on SELL orders)."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    UNKNOWN = "unknown"


class DisbursementStatus(StrEnum):
    """[seen] `providerDisbursementStatus`: `pending` means ready for the deposit.
    [ours] the simulator also uses `expired` and `completed`."""

    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"


class OrderType(StrEnum):
    BUY = "buy"
    SELL = "sell"
    UNKNOWN = "unknown"


# [ours] machineStatusField values the simulator uses for outcomes the documented enums lack.
MACHINE_STATUS_EXPIRED: Final = "ORDER_EXPIRED"

_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "transferStatus": TransferStatus,
    "paymentStatus": PaymentStatus,
    "providerDisbursementStatus": DisbursementStatus,
    "orderType": OrderType,
}


def _lenient_enum(enum: type[StrEnum]) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if value is None or isinstance(value, enum):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in enum._value2member_map_:
                return enum(text)
        return enum("unknown")

    return BeforeValidator(parse)


def _optional_text(value: Any) -> Any:
    """Free-text fields: keep strings, drop anything else rather than fail the whole order."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return None


def _lower_text(value: Any) -> Any:
    value = _optional_text(value)
    return value.strip().lower() if isinstance(value, str) else value


def _upper_text(value: Any) -> Any:
    value = _optional_text(value)
    return value.strip().upper() if isinstance(value, str) else value


Text = Annotated[str | None, BeforeValidator(_optional_text)]


OptionalAddress = Annotated[str | None, BeforeValidator(validate_address)]


def _is_wire(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("kado_wire"))


def _check_amount(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number (NaN and Infinity are not amounts)")
    if value <= 0:
        raise ValueError("must be greater than zero")
    if len(value.as_tuple().digits) > MAX_AMOUNT_DIGITS or value >= MAX_PAY_AMOUNT:
        raise ValueError(f"is absurdly large (limit {MAX_PAY_AMOUNT:,} whole units)")
    if value.adjusted() < -MAX_FRACTION_DIGITS:
        raise ValueError(f"has more than {MAX_FRACTION_DIGITS} fractional digits")
    return value


class PayAmount(BaseModel):
    """What the wallet must send for a SELL order. `amount` None: the order is not ready."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    amount: Decimal | None = None
    unit: Text = None

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, (bool, float)):
            # A float has already lost the provider's exact decimal text.
            raise ValueError("must be an exact decimal number, not a float or boolean")
        if isinstance(value, int):
            value = Decimal(value)
        elif isinstance(value, str):
            if _is_wire(info):
                raise ValueError("must be a JSON number, not a string")
            try:
                value = Decimal(value)
            except InvalidOperation:
                raise ValueError("is not a decimal number") from None
        elif not isinstance(value, Decimal):
            raise ValueError("must be a JSON number")
        return _check_amount(value)

    def base_units(self, decimals: int) -> int:
        """The amount in the token's base units; ValueError unless exactly representable."""
        if self.amount is None:
            raise ValueError("payAmount.amount is missing")
        base = exact_base_units(self.amount, decimals)
        if base is None:
            raise ValueError(f"payAmount.amount {self.amount} has more than {decimals} decimals")
        return base


def _lenient_decimal(value: Any) -> Any:
    """Fiat amounts and fees are informative: unparsable values become None, never an error."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        number = Decimal(value) if isinstance(value, (int, str, Decimal)) else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None


class InfoAmount(BaseModel):
    """Fiat amounts and fees (`recvAmount`, `totalFee`, ...): informative, parsed leniently."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    amount: Annotated[Decimal | None, BeforeValidator(_lenient_decimal)] = None
    unit: Text = None


def _lenient_info_amount(value: Any) -> Any:
    return value if isinstance(value, (dict, InfoAmount)) else None


InfoAmountField = Annotated[InfoAmount | None, BeforeValidator(_lenient_info_amount)]


def _strict_decimals(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError("must be an integer number of decimals")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise ValueError("must be an integer number of decimals")
    number = int(value)
    if not 0 <= number <= 36:
        raise ValueError("must be between 0 and 36")
    return number


def _lenient_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else None


def _lenient_int(value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


class CryptoCurrency(BaseModel):
    """The token the order is paid in. The engine checks these against its own configuration;
    it never trusts them to pick a contract."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    symbol: Annotated[str | None, BeforeValidator(_upper_text)] = None
    address: OptionalAddress = None
    is_native: Annotated[bool | None, BeforeValidator(_lenient_bool)] = Field(
        default=None, alias="isNative"
    )
    decimals: Annotated[int | None, BeforeValidator(_strict_decimals)] = None
    official_chain_id: Annotated[int | None, BeforeValidator(_lenient_int)] = Field(
        default=None, alias="officialChainId"
    )


def _dict_or_none(value: Any) -> Any:
    return value if isinstance(value, dict) else None


def _list_or_empty(value: Any) -> Any:
    return value if isinstance(value, list) else []


def _lenient_number(value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    return None


class KadoOrder(BaseModel):
    """One Kado order, as the order-status route describes it."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    id: str = Field(min_length=1, max_length=200)
    order_type: Annotated[OrderType | None, _lenient_enum(OrderType)] = Field(
        default=None, alias="orderType"
    )
    blockchain: Annotated[str | None, BeforeValidator(_lower_text)] = None
    asset: Annotated[str | None, BeforeValidator(_upper_text)] = None
    asset_symbol: Annotated[str | None, BeforeValidator(_upper_text)] = Field(
        default=None, alias="assetSymbol"
    )
    user_ref: Text = Field(default=None, alias="userRef")
    wallet_address: Text = Field(default=None, alias="walletAddress")
    deposit_address: OptionalAddress = Field(default=None, alias="depositAddress")
    manual_deposit_memo: Text = Field(default=None, alias="manualDepositMemo")
    pay_amount: PayAmount | None = Field(default=None, alias="payAmount")
    recv_amount: InfoAmountField = Field(default=None, alias="recvAmount")
    total_fee: InfoAmountField = Field(default=None, alias="totalFee")
    processing_fee: InfoAmountField = Field(default=None, alias="processingFee")
    gas_fee: InfoAmountField = Field(default=None, alias="gasFee")
    bridge_fee: Annotated[list[Any], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="bridgeFee"
    )
    smart_contract_fees: Annotated[list[Any], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list, alias="smartContractFees"
    )
    crypto_currency: CryptoCurrency | None = Field(default=None, alias="cryptoCurrency")
    payment_status: Annotated[PaymentStatus | None, _lenient_enum(PaymentStatus)] = Field(
        default=None, alias="paymentStatus"
    )
    transfer_status: Annotated[TransferStatus | None, _lenient_enum(TransferStatus)] = Field(
        default=None, alias="transferStatus"
    )
    provider_disbursement_status: Annotated[
        DisbursementStatus | None, _lenient_enum(DisbursementStatus)
    ] = Field(default=None, alias="providerDisbursementStatus")
    machine_status: Annotated[str | None, BeforeValidator(_upper_text)] = Field(
        default=None, alias="machineStatusField"
    )
    human_status: Text = Field(default=None, alias="humanStatusField")
    tx_hash: Text = Field(default=None, alias="txHash")
    all_possible_tx_hashes: Annotated[dict[str, Any] | None, BeforeValidator(_dict_or_none)] = (
        Field(default=None, alias="allPossibleTxHashes")
    )
    created_at: Text = Field(default=None, alias="createdAt")
    expires_at: Text = Field(default=None, alias="expiresAt")  # [ours] the simulator sets it
    settlement_time_seconds: Annotated[float | None, BeforeValidator(_lenient_number)] = Field(
        default=None, alias="settlementTimeInSeconds"
    )
    # Enum fields whose provider value was not recognised, verbatim (truncated): {"transferStatus":
    # "refunded"}. Filled only when parsing a provider response.
    unrecognised: dict[str, str] = Field(default_factory=dict)

    @field_validator("pay_amount", "crypto_currency", mode="before")
    @classmethod
    def _object_or_none(cls, value: Any) -> Any:
        if value is None or isinstance(value, (dict, BaseModel)):
            return value
        raise ValueError("must be an object")

    @model_validator(mode="before")
    @classmethod
    def _record_unrecognised(cls, data: Any, info: ValidationInfo) -> Any:
        if not (_is_wire(info) and isinstance(data, dict)):
            return data
        unrecognised: dict[str, str] = {}
        for key, enum in _ENUM_FIELDS.items():
            raw = data.get(key)
            if raw is None:
                continue
            if isinstance(raw, str) and raw.strip().lower() in enum._value2member_map_:
                continue
            unrecognised[key] = (raw if isinstance(raw, str) else repr(raw))[:100]
        return {**data, "unrecognised": unrecognised}

    # ---- what the workflow asks --------------------------------------------------------------

    @property
    def amount(self) -> Decimal | None:
        return self.pay_amount.amount if self.pay_amount else None

    @property
    def missing_for_deposit(self) -> list[str]:
        """Why the order is not ready for the deposit yet (empty when it is)."""
        missing = []
        if self.amount is None:
            missing.append("payAmount.amount")
        if self.deposit_address is None:
            missing.append("depositAddress")
        if self.transfer_status is not TransferStatus.UNINITIATED:
            missing.append(f"transferStatus=uninitiated (is {self._show(self.transfer_status)})")
        if self.provider_disbursement_status is not DisbursementStatus.PENDING:
            missing.append(
                "providerDisbursementStatus=pending "
                f"(is {self._show(self.provider_disbursement_status)})"
            )
        return missing

    @property
    def is_ready_for_deposit(self) -> bool:
        """Ready: amount and deposit address present, transferStatus `uninitiated` and
        providerDisbursementStatus `pending`. (Order type and every other check is the
        workflow's.)"""
        return not self.missing_for_deposit

    @property
    def is_settled(self) -> bool:
        return self.transfer_status is TransferStatus.SETTLED

    @property
    def is_failed(self) -> bool:
        return self.transfer_status is TransferStatus.FAILED

    @property
    def is_expired(self) -> bool:
        """[ours] expiry is `transferStatus: failed` with `machineStatusField: ORDER_EXPIRED` (or
        `providerDisbursementStatus: expired`): documented enums lack an expired value."""
        return self.machine_status == MACHINE_STATUS_EXPIRED or (
            self.provider_disbursement_status is DisbursementStatus.EXPIRED
        )

    @property
    def is_terminal(self) -> bool:
        return self.is_settled or self.is_failed

    @staticmethod
    def _show(value: StrEnum | None) -> str:
        return "missing" if value is None else value.value


class KadoEnvelope(BaseModel):
    """The response wrapper `{success, message, data}`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    success: bool = Field(strict=True)
    message: Text = None
    data: Any = None


# ---- activity inputs (the workflow builds these) ---------------------------------------------


class FetchOrderInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(min_length=1, max_length=200)


class WaitForOrderChangeInput(BaseModel):
    """What counts as "changed" for `kado_wait_for_order_change`:

    - `await_ready` and the order became ready for the deposit, or
    - `transfer_status` differs from `last_transfer_status`, or
    - the order is terminal (settled or failed).

    `until_final` (following a paid order): only a terminal status, or a move to or from
    `unknown` (a person is called after a while in it), ends the wait; the steps between
    (`uninitiated` → `pending`) need nothing of the workflow, and each ending is a billed attempt.

    `retry_malformed`: a malformed provider answer is retried like a transient error (after the
    next poll delay) instead of failing the wait; the workflow sets it after payment.

    Poll cadence: attempt n waits `min(max_interval, initial_interval * backoff**(n-1))` before the
    next poll (and at least the provider's Retry-After).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(min_length=1, max_length=200)
    await_ready: bool = False
    last_transfer_status: TransferStatus | None = None
    initial_interval_seconds: float = Field(default=5.0, gt=0)
    max_interval_seconds: float = Field(default=60.0, gt=0)
    backoff: float = Field(default=1.5, ge=1.0)
    retry_malformed: bool = False
    # > 0: one attempt polls inside (sleeping between polls) for up to this long.
    attempt_seconds: float = Field(default=0.0, ge=0)
    until_final: bool = False

    def changed(self, order: KadoOrder) -> bool:
        if self.await_ready and order.is_ready_for_deposit:
            return True
        if order.is_terminal:
            return True
        moved = (
            self.last_transfer_status is not None
            and order.transfer_status is not self.last_transfer_status
        )
        if moved and self.until_final:
            unknown = TransferStatus.UNKNOWN
            return unknown in (order.transfer_status, self.last_transfer_status)
        return moved

    def delay_seconds(self, attempt: int) -> float:
        exponent = max(0, min(attempt - 1, 64))
        return float(
            min(self.max_interval_seconds, self.initial_interval_seconds * self.backoff**exponent)
        )


# ---- parsing provider text -------------------------------------------------------------------


class OrderParseError(ValueError):
    """The body is not the documented shape. `field` names the offending field (dotted, by the
    provider's names), or "body" when the text is not a JSON object at all."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _parse_int(text: str) -> int | Decimal:
    # Python refuses ints over 4,300 digits with a bare ValueError; keep absurd numbers as values
    # so the field that holds one is named in the error.
    return int(text) if len(text) <= 60 else Decimal(text)


MAX_JSON_DEPTH: Final = 64
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_depth(data: bytes) -> None:
    """Refuse deeply nested JSON before parsing it: the C parser recurses per level, and a hostile
    body of a million brackets would exhaust the stack (a crash, not an exception)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def loads_exact(text: str | bytes) -> Any:
    """JSON with every non-integer number as an exact Decimal (NaN/Infinity as Decimal too, so
    the field holding one is rejected by name). Nesting is limited to `MAX_JSON_DEPTH`."""
    _check_depth(text.encode() if isinstance(text, str) else text)
    return json.loads(text, parse_float=Decimal, parse_int=_parse_int, parse_constant=Decimal)


def _error_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "data"


def _error_reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def order_from_data(data: Any) -> KadoOrder:
    """Validate a wire-parsed order object (from `loads_exact`)."""
    if not isinstance(data, dict):
        raise OrderParseError("data", "must be an object")
    try:
        return KadoOrder.model_validate(data, context=WIRE_CONTEXT)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise OrderParseError(_error_field(first["loc"]), _error_reason(first["msg"])) from None


def parse_envelope(text: str | bytes) -> KadoEnvelope:
    """The wrapper of any response body; OrderParseError("body" or a field) when it is not one."""
    try:
        payload = loads_exact(text)
    except (ValueError, RecursionError):
        raise OrderParseError("body", "is not JSON") from None
    if not isinstance(payload, dict):
        raise OrderParseError("body", "is not a JSON object")
    if "success" not in payload:
        raise OrderParseError("success", "is missing")
    try:
        return KadoEnvelope.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise OrderParseError(_error_field(first["loc"]), _error_reason(first["msg"])) from None
