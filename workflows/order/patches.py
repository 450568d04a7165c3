"""Workflow patch ids (`workflow.patched`) of the order workflow: changes made while runs were
open. Each one is held by committed histories: never rename or remove one."""

from __future__ import annotations

from typing import Final

PATCH_IDENTITY_FIRST: Final = "identity-check-before-waiting"
PATCH_RECHECK_AFTER_APPROVAL: Final = "recheck-after-approval"
PATCH_FIND_EARLIER_PAYMENT: Final = "find-earlier-payment"
# The provider says the crypto is already in transit: refuse at once (after looking for an
# earlier payment of ours) instead of waiting for readiness until the deadline.
PATCH_ALREADY_FUNDED: Final = "refuse-already-funded"
# A workflow cancel before sending ends CANCELLED (it ended REJECTED provider_refused before).
PATCH_WORKFLOW_CANCEL: Final = "workflow-cancel-ends-cancelled"
# After payment a malformed provider answer is retried until the settlement deadline (it ended
# the order UNRESOLVED at once before).
PATCH_RETRY_MALFORMED_AFTER_PAYMENT: Final = "retry-malformed-after-payment"
# The payment's progress names the wallet that reserved (the order's HotWallet follows it) and
# clears the order's attention once the payment no longer needs it (e.g. funds arrived).
PATCH_PROGRESS_WALLET_AND_ATTENTION: Final = "progress-wallet-and-attention"
# A poll_now inside POLL_NOW_MIN_GAP of a poll's start is remembered and polls once when the gap
# ends (it was ignored before): one timer per gap, however many wakes arrive in it.
PATCH_DEFERRED_POLL_NOW: Final = "deferred-poll-now"
# The search-attribute upserts of one workflow task go out as one command (each is billed), at
# the end of the task's step (and before the workflow ends); they were one command each before.
PATCH_COMBINED_UPSERTS: Final = "combined-upserts"
# Search attributes go out only when someone filters on the change: a stage an order can sit in
# (waiting for the order or an approval, funding, tracking, an ending) or the attention flag.
# The other changes (validated, confirming, provider status, tx hash, the plan's fields) ride
# along with the next such upsert; the live details show them at once. (Combined-upserts sent
# one command per workflow task that changed anything: 6 for a happy order, now 3.)
PATCH_SPARSE_UPSERTS: Final = "sparse-upserts"
# The payment reports progress only for attention (quiet-progress): the wallet that paid comes
# from its outcome (the HotWallet search attribute, when a pool's other wallet paid).
PATCH_WALLET_FROM_OUTCOME: Final = "wallet-from-outcome"
# A long-lived order continues as new (its history is long: suggested by the server or at the
# input's history_budget), from its waits; it grew by ~4 events per wake for good before.
PATCH_CONTINUE_AS_NEW: Final = "order-continue-as-new"
