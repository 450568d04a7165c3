"""Why an order or a payment was refused before anything was sent: the one vocabulary.

The order check and the payment preflight (and the hot wallet) refuse with these codes, and the
order's result carries the payment's code as it is. Stable codes for backends: never change a
value. The payment pipeline once had codes of its own; their values still decode (`_missing_`,
committed histories hold them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


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
    # Refusals only the payment makes (the chain's fees, the hot wallet's daily cap).
    FEE_ABOVE_CAP = "fee_above_cap"
    DAILY_CAP = "daily_cap"

    @classmethod
    def _missing_(cls, value: Any) -> RejectReason | None:
        return _FORMER_PAYMENT_CODES.get(value) if isinstance(value, str) else None


# Values the payment pipeline wrote before the vocabularies were one (decoded, never written);
# its member names were the upper-case keys.
_FORMER_PAYMENT_CODES: dict[str, RejectReason] = {
    "chain_not_configured": RejectReason.UNSUPPORTED_CHAIN,
    "chain_not_served": RejectReason.CHAIN_ID_MISMATCH,
    "token_mismatch": RejectReason.TOKEN_ADDRESS_MISMATCH,
    "invalid_amount": RejectReason.AMOUNT_INVALID,
    "amount_over_cap": RejectReason.OVER_ORDER_CAP,
    "invalid_recipient": RejectReason.DEPOSIT_ADDRESS_INVALID,
    "would_revert": RejectReason.TRANSFER_WOULD_FAIL,
}
