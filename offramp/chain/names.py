"""Names of the payment pipeline's workflows, activities, signals, updates and queries.

One place for every name that crosses a process boundary: workflows call activities and signal
each other by these, activities start and query workflows by these, and none of them imports the
other's module (activities never import workflows). Each value is registered in committed
histories: never change one; add a new name beside it.
"""

from __future__ import annotations

from typing import Final

# ---- workflow types ----------------------------------------------------------------------------
PAYMENT_WORKFLOW: Final = "Payment"
NONCE_FILL_WORKFLOW: Final = "NonceFill"
HOT_WALLET_WORKFLOW: Final = "HotWallet"

# ---- activities --------------------------------------------------------------------------------
PAYMENT_PREFLIGHT_ACTIVITY: Final = "payment_preflight"
QUOTE_FEES_ACTIVITY: Final = "quote_fees"
READ_WALLET_NONCES_ACTIVITY: Final = "read_wallet_nonces"
SIGN_AND_BROADCAST_ACTIVITY: Final = "sign_and_broadcast"
AWAIT_TRANSACTION_ACTIVITY: Final = "await_transaction"
REQUEST_NONCE_ACTIVITY: Final = "request_nonce"
READ_WALLET_BALANCES_ACTIVITY: Final = "read_wallet_balances"
RESERVE_NONCE_ACTIVITY: Final = "reserve_nonce"
WORKFLOW_CLOSED_ACTIVITY: Final = "workflow_closed"

# ---- HotWallet handlers --------------------------------------------------------------------------
# Signals.
REQUEST_NONCE_SIGNAL: Final = "request_nonce"
TX_BROADCAST_SIGNAL: Final = "tx_broadcast"
NONCE_SETTLED_SIGNAL: Final = "nonce_settled"
RELEASE_SIGNAL: Final = "release"
# Updates.
RESERVE_UPDATE: Final = "reserve"  # the old protocol (update-with-start)
ABANDON_UPDATE: Final = "abandon"
PAUSE_UPDATE: Final = "pause"
RESUME_UPDATE: Final = "resume"
RECONCILE_UPDATE: Final = "reconcile"
SET_NONCE_UPDATE: Final = "set_nonce"
# Error types of the HotWallet updates.
ERR_DAILY_CAP: Final = "DailyCapExceeded"
ERR_IN_FLIGHT_LIMIT: Final = "InFlightLimit"
ERR_PAUSED: Final = "WalletPaused"
ERR_RELEASED: Final = "NonceReleased"
# Queries.
RESERVATION_QUERY: Final = "reservation"
PAYMENT_LOOKUP_QUERY: Final = "payment_lookup"
SUMMARY_QUERY: Final = "summary"

# ---- Payment / NonceFill handlers ---------------------------------------------------------------
NONCE_ANSWER_SIGNAL: Final = "nonce_answer"
# The `state` query of Payment, NonceFill and HotWallet.
STATE_QUERY: Final = "state"
