"""The benchmark's pure figures: percentiles and the longest stall after a server restart."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from offramp.bench.figures import Row
from offramp.bench.stats import Outage, latencies, longest_stall, percentile, rate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_percentiles_are_measured_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    lat = latencies([3.0, 1.0, 2.0])
    assert (lat.p50, lat.p95, lat.max) == (2.0, 3.0, 3.0)


def test_rate_over_first_start_to_last_close() -> None:
    assert rate(10, at(0), at(5)) == 2.0


def test_stall_counts_from_the_restart_not_the_kill() -> None:
    # Closes every second, server down 10..30 s, first close after the restart at 42 s.
    closes = [at(s) for s in range(10)] + [at(42), at(43)]
    outage = Outage(killed=at(10), restarted=at(30))
    assert longest_stall(closes, [outage]) == 12.0


def test_stall_up_to_the_next_kill_counts() -> None:
    # After the first restart nothing closes until the second kill: that silence is a stall.
    outages = [Outage(at(10), at(20)), Outage(at(50), at(55))]
    closes = [at(5), at(56), at(57)]
    assert longest_stall(closes, outages) == 30.0


def test_steady_progress_has_short_stalls() -> None:
    outages = [Outage(at(10), at(20))]
    closes = [at(20 + 0.5 * i) for i in range(1, 40)]
    assert longest_stall(closes, outages) == 0.5


def test_a_scenario_is_clean_only_with_no_stuck_no_bad_outcome_and_a_clean_chain() -> None:
    clean = Row("orders", 2, 1.0, "orders/s", 2.0, outcomes=Counter({"SETTLED": 2}), chain="ok")
    assert clean.problem() is None
    stuck = Row("orders", 2, 1.0, "orders/s", 2.0, outcomes=Counter({"SETTLED": 1}), stuck=1)
    assert stuck.problem() == "1 stuck"
    rejected = Row("orders", 1, 1.0, "orders/s", 1.0, outcomes=Counter({"REJECTED": 1}))
    assert "REJECTED" in (rejected.problem() or "")
    double = Row("pool 1", 1, 1.0, "payments/s", 1.0, chain="FAIL: 1 paid twice")
    assert "paid twice" in (double.problem() or "")
