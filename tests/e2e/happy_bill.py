"""The measured bill of a happy order (Temporal Cloud actions), asserted from real histories in
tests/e2e/test_cost.py and used for the per-settlement-time bill in
tests/providers/test_wait_bill.py."""

from __future__ import annotations

from collections import Counter

# A happy order's actions besides its provider polls (measured; a regression fails): one start,
# the payment child (2), its two progress signals, and an upsert only for what a list filter needs
# at once: FUNDING, TRACKING, SETTLED (sparse-upserts; one per workflow task that changed an
# attribute before, 6; one per change before that, 9).
EXPECTED_ORDER_FIXED: Counter[str] = Counter(start=1, upsert=3, child_start=2, signal=2)
# The payment child: its start is billed in the order's child_start. Its activities (gas,
# broadcast, receipt), the hot-wallet entity's signals and its progress signals.
EXPECTED_PAYMENT: Counter[str] = Counter(
    start=1, activity_attempt=5, timer=1, signal=1, signal_sent=4
)


def order_bill(order: Counter[str], payment: Counter[str]) -> int:
    """Actions per order: the order and its payment child, each action once (the child's start
    is in the order's child_start; the order's signals come from the child's signal_sent)."""
    return sum(order.values()) + sum(payment.values()) - payment["start"] - order["signal"]


# A happy order's bill besides its waits: the order (6 without its progress signals, which the
# payment's signal_sent bills), the payment child (11 without its start), the fetch and the check.
FIXED_BILL = order_bill(EXPECTED_ORDER_FIXED, EXPECTED_PAYMENT) + 2
