"""What a wait costs, from the wait activity's own schedule (offramp/providers/polling.py, which
the activity runs): billed attempts and provider calls per settlement time, with and without
webhooks. The fixed part of an order's bill is measured from real histories in
tests/e2e/test_cost.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from offramp.providers.kado.models import WaitForOrderChangeInput
from offramp.providers.polling import poll_number_at, wait_bill
from tests.e2e.happy_bill import FIXED_BILL

DAY = 86_400.0
# Measured in tests/e2e/test_cost.py: the order, its payment child, the fetch and the check.
FIXED_ACTIONS = FIXED_BILL
# A happy order's tracking waits once (`until_final`: the provider's steps between our payment
# and its ending end no wait; it waited twice before, the quick first wait 1 attempt).
OTHER_WAITS = 0

# Without webhooks: adaptive from 5 s up to 5 minutes; one billed attempt per hour of waiting.
POLLING = WaitForOrderChangeInput(
    order_id="o1", initial_interval_seconds=5, max_interval_seconds=300, attempt_seconds=3600
)
# With webhooks (they wake the order): a 15-minute safety poll, one attempt per 6 hours.
WEBHOOKS = WaitForOrderChangeInput(
    order_id="o1", initial_interval_seconds=5, max_interval_seconds=900, attempt_seconds=6 * 3600
)
# The schedule before (one poll per attempt, up to 1 minute apart): the figures.
BEFORE = WaitForOrderChangeInput(order_id="o1", initial_interval_seconds=5, max_interval_seconds=60)


def order_actions(wait: WaitForOrderChangeInput, seconds: float, wakes: int = 0) -> int:
    # A wake: its signal and the new wait's attempt.
    return FIXED_ACTIONS + OTHER_WAITS + wait_bill(wait, seconds).attempts + 2 * wakes


def test_before_a_day_cost_one_attempt_per_poll() -> None:
    bill = wait_bill(BEFORE, DAY)
    assert bill.attempts == bill.polls > 1_400


def test_a_day_without_webhooks_is_at_most_60_actions_and_300_provider_calls() -> None:
    bill = wait_bill(POLLING, DAY)
    assert bill.polls <= 300
    assert order_actions(POLLING, DAY) <= 60
    # Early answers stay quick: the first minute polls 6 times.
    assert wait_bill(POLLING, 60).polls >= 6


@pytest.mark.parametrize("settles_in", [5.0, 300.0, 3600.0, DAY])
def test_with_webhooks_the_wait_costs_a_few_attempts_at_any_settlement_time(
    settles_in: float,
) -> None:
    # One wake: the receiver wakes the order only for what it acts on (here: settled).
    assert wait_bill(WEBHOOKS, settles_in).attempts <= 5
    assert order_actions(WEBHOOKS, settles_in, wakes=1) <= (20 if settles_in <= 3600 else 24)
    assert wait_bill(WEBHOOKS, settles_in).polls <= 110


def test_the_activity_resumes_the_schedule_where_the_last_attempt_left_it() -> None:
    assert poll_number_at(POLLING, 0) == 1
    assert poll_number_at(POLLING, 4.9) == 1
    assert poll_number_at(POLLING, 5.0) == 2
    assert POLLING.delay_seconds(poll_number_at(POLLING, timedelta(hours=2).total_seconds())) == 300
