"""One row per scenario and the compact table printed at the end."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from rich import box
from rich.table import Table

from offramp.bench.stats import Latencies

# Every scenario starts only orders and payments that must succeed.
CLEAN_OUTCOMES = frozenset({"SETTLED", "confirmed", "COMPLETED"})


@dataclass
class Row:
    scenario: str
    count: int
    rate: float
    unit: str  # "orders/s", "payments/s", "workflows/s"
    seconds: float  # wall time, first start to the end of the wait
    latency: Latencies | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    stuck: int = 0  # still open when the wait ended
    chain: str = "-"  # the on-chain audit's verdict
    notes: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        """Why this scenario is not clean (a correctness verdict, never a timing one)."""
        if self.stuck:
            return f"{self.stuck} stuck"
        unexpected = {k: v for k, v in self.outcomes.items() if k not in CLEAN_OUTCOMES}
        if unexpected:
            return f"outcomes {dict(unexpected)}"
        if self.chain.startswith("FAIL"):
            return f"on chain {self.chain}"
        return None


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(rows: list[Row]) -> Table:
    """The figures; outcomes and the on-chain verdict follow as lines (`details`)."""
    t = Table(title="Benchmark", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("scenario", "n", "rate", "p50 s", "p95 s", "max s", "wall s", "stuck"):
        t.add_column(name, justify="left" if name == "scenario" else "right", no_wrap=True)
    for row in rows:
        lat = row.latency
        t.add_row(
            row.scenario,
            str(row.count),
            # Over the closed ones only when some are stuck: not a throughput then.
            f"{_num(row.rate, 2)} {row.unit}" + (" (partial)" if row.stuck else ""),
            _num(lat.p50) if lat else "-",
            _num(lat.p95) if lat else "-",
            _num(lat.max) if lat else "-",
            _num(row.seconds, 0),
            str(row.stuck),
        )
    return t


def details(rows: list[Row]) -> list[str]:
    """Per scenario: outcome counts, the on-chain verdict, then its notes."""
    lines = []
    for row in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row.outcomes.items())) or "none"
        lines.append(f"{row.scenario}: outcomes {outcomes}; on chain: {row.chain}")
        lines += [f"  {note}" for note in row.notes]
    return lines
