"""Pure figures from timestamps: rates, percentiles and the longest stall after an outage."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Latencies:
    p50: float
    p95: float
    max: float


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latencies(values: Sequence[float]) -> Latencies:
    return Latencies(
        p50=percentile(values, 0.50),
        p95=percentile(values, 0.95),
        max=max(values) if values else math.nan,
    )


def rate(count: int, first_start: datetime | None, last_close: datetime | None) -> float:
    """Completions per second over the whole span, first start to last close."""
    if count == 0 or first_start is None or last_close is None:
        return math.nan
    span = (last_close - first_start).total_seconds()
    return count / span if span > 0 else math.nan


@dataclass(frozen=True)
class Outage:
    killed: datetime
    restarted: datetime


def longest_stall(closes: Sequence[datetime], outages: Sequence[Outage]) -> float:
    """The longest time, after the first restart, with no workflow closing: between consecutive
    closes, from a restart to the next close, and from a close (or restart) to the next kill.
    Time while the server is down is not a stall; nothing after the last close counts either."""
    if not outages:
        return math.nan
    first_restart = min(o.restarted for o in outages)
    # (time, is_kill): a gap that starts at a kill is the outage itself.
    points = sorted(
        [(c, False) for c in closes if c >= first_restart]
        + [(o.restarted, False) for o in outages]
        + [(o.killed, True) for o in outages if o.killed > first_restart]
    )
    longest = 0.0
    for (earlier, at_kill), (later, _) in itertools.pairwise(points):
        if not at_kill:
            longest = max(longest, (later - earlier).total_seconds())
    return longest
