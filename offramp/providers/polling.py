"""The wait activity's poll schedule, shared by the activity and the cost tests: when it polls,
and how many (billed) attempts and provider calls a wait of a given length makes."""

from __future__ import annotations

from typing import NamedTuple

from offramp.providers.base import WaitInput


class WaitBill(NamedTuple):
    attempts: int  # billed activity attempts
    polls: int  # provider calls


def poll_number_at(wait: WaitInput, elapsed_seconds: float) -> int:
    """The number (from 1) of the poll due `elapsed_seconds` after the wait was scheduled."""
    n, t = 1, 0.0
    while t + wait.delay_seconds(n) <= elapsed_seconds:
        t += wait.delay_seconds(n)
        n += 1
    return n


def wait_bill(wait: WaitInput, seconds: float) -> WaitBill:
    """Attempts and polls of a wait whose change the provider shows `seconds` after the wait
    starts, as the activity runs it (no provider errors, no wakes)."""
    t, n, attempts, polls = 0.0, 1, 0, 0
    while True:
        attempts += 1
        attempt_started = t
        while True:
            polls += 1
            if t >= seconds:
                return WaitBill(attempts, polls)
            delay = wait.delay_seconds(n)
            n += 1
            t += delay
            if wait.attempt_seconds <= 0 or t - attempt_started > wait.attempt_seconds:
                break
