"""The harness end to end with tiny sizes (the real sizes run in `make bench`, never asserted as
timings): every scenario runs on its own stack, reaches its outcome and passes the chain audit,
and every process it started is stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from offramp.bench import tracking
from offramp.bench.figures import Row
from offramp.bench.runner import BenchPlan, run_plan
from offramp.bench.stack import BenchSettings, BenchStack


async def test_tiny_benchmark_runs_every_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quick blocks, settlement and progress polls: the harness's logic is the same at any pace
    # (`make bench` keeps 1 s blocks, 2 s settlement and 1 s polls).
    monkeypatch.setattr(tracking, "POLL_SECONDS", 0.2)
    plan = BenchPlan(
        orders=3,
        pools=[1],
        payments=3,
        kill_orders=3,
        down_seconds=1.0,
        soak=3,
        settle=3,
        timeout=240,
    )
    stack = BenchStack(BenchSettings(data_dir=tmp_path, block_time=0.25, settlement_delay=0.5))
    lines: list[str] = []
    rows: list[Row] = []
    try:
        stack.start()
        await run_plan(stack, plan, lines.append, rows)
    finally:
        stack.close()
    by_name = {row.scenario.split(" (")[0]: row for row in rows}
    assert set(by_name) == {
        "orders",
        "skeleton",
        "pool 1",
        "orders server-kill x2",
        "soak",
        "settled → done, webhooks",
    }
    for row in rows:
        assert row.stuck == 0, (row.scenario, row.notes)
        assert row.rate > 0, row.scenario
    for name in ("orders", "orders server-kill x2", "settled → done, webhooks"):
        assert by_name[name].outcomes == {"SETTLED": 3}, by_name[name].notes
        assert by_name[name].chain.startswith("ok: 3 paid once"), by_name[name].chain
    for name in ("pool 1", "soak"):
        assert by_name[name].outcomes == {"confirmed": 3}
        assert by_name[name].chain.startswith("ok: 3 paid once"), by_name[name].chain
    assert by_name["skeleton"].outcomes == {"COMPLETED": 3}
    assert any("longest stall" in n for n in by_name["orders server-kill x2"].notes)
    assert any("continue-as-new" in n for n in by_name["soak"].notes)
    # Every settled order's lag was measured; the polls are minutes apart, so the webhooks ended
    # the waits (well inside the scenario's own time limit).
    settle = by_name["settled → done, webhooks"]
    assert any("over 3 orders" in n for n in settle.notes), settle.notes
    assert settle.latency is not None and settle.latency.max < 60, settle.notes
    assert sum(line.count("SIGKILLed") for line in lines) == 2
    processes = [*stack.local.processes.values(), stack.simulator]
    assert all(p is not None and not p.running() for p in processes)
