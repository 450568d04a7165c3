"""`offramp demo` (what `make run` runs) end to end, as a user runs it: a subprocess that brings the
stack up, runs a batch of orders, prints a summary, exits 0 and stops everything; a second run
against the same data dir works too (fresh order ids, persisted chain and workflows)."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from offramp.cli.demo import CORE, DemoOrder, Scenario, plan_scenarios, verdict
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.orders.models import RejectReason, SellOrderInput, SellOrderResult, Stage
from tests.devstack.test_stack import processes_mentioning

ORDERS = 8
ORDER_ID = re.compile(r"^demo-[0-9a-f]{6}-\d{2}$")


UI_LINE = re.compile(rb"Web UI \(while the demo runs\): (\S+)")


def run_demo(
    data_dir: Path, ports: dict[str, int], log: Path
) -> tuple[int | None, str, int | None]:
    """The exit code, the output, and the HTTP status of the printed Web UI link, fetched while
    the demo still ran (None if no link was printed before it ended)."""
    argv = [sys.executable, "-m", "offramp", "demo", "--orders", str(ORDERS)]
    argv += ["--data-dir", str(data_dir), "--timeout", "120"]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    # Wide enough that every summary row is one line.
    env = {**os.environ, "COLUMNS": "250", "PYTHONIOENCODING": "utf-8"}
    proc = ManagedProcess("demo", argv, log, env=env).start()
    try:
        deadline = time.monotonic() + 180
        ui_status: int | None = None
        while proc.running() and time.monotonic() < deadline:
            link = UI_LINE.search(proc.log_since_start())
            if ui_status is None and link is not None:
                ui_status = httpx.get(link.group(1).decode(), timeout=10).status_code
            time.sleep(0.2)
        assert not proc.running(), f"demo still running after 180 s:\n{proc.log_tail(60)}"
        code = proc.stop()
    finally:
        proc.kill()  # a no-op when it exited by itself; else the whole group goes
    return code, proc.log_since_start().decode(errors="replace"), ui_status


def summary_rows(output: str) -> list[list[str]]:
    """The words of each order's row in the summary table (✓, order, scenario, outcome, ...)."""
    _, found, summary = output.partition("\nSummary")
    assert found, output
    rows = []
    for line in summary.splitlines():
        words = line.split()
        if len(words) > 1 and ORDER_ID.match(words[1]):
            rows.append(words)
    return rows


def assert_expected_outcomes(output: str) -> None:
    plan: list[Scenario] = plan_scenarios(ORDERS)
    rows = summary_rows(output)
    assert [row[2] for row in rows] == [s.name for s in plan], output
    assert len({row[1] for row in rows}) == ORDERS, "order ids must be unique"
    for row, scenario in zip(rows, plan, strict=True):
        expected = scenario.expected
        check, _order, _name, outcome, *rest = row
        line = " ".join(rest)
        assert (check, outcome) == ("✓", expected.outcome.value), (scenario.name, row, output)
        if expected.reject_reason is not None:
            assert rest[0] == expected.reject_reason.value, row
        if expected.needs_attention:
            assert "needs attention" in line, row
        if expected.min_tx_hashes > 1:
            bumped = re.search(r"fee-bumped: (\d+) txs", line)
            assert bumped and int(bumped.group(1)) >= expected.min_tx_hashes, row
            assert re.search(r"0x[0-9a-f]{64} \(\+\d+\)", line), row
        elif expected.outcome is not Stage.REJECTED:
            assert re.search(r"0x[0-9a-f]{64}", line), row  # the confirmed hash, in full
    assert f"all {ORDERS} orders reached their expected outcome" in output


@pytest.mark.stack
def test_demo_runs_twice_against_the_same_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {name: free_port() for name in ("temporal", "ui", "anvil", "simulator", "webhooks")}
    plan = {s.name for s in plan_scenarios(ORDERS)}
    assert {"needs_approval", "stuck_tx_fee_bump", "provider_failure", "reject_buy_order"} <= plan

    first_ids: set[str] = set()
    for run in (1, 2):
        code, output, ui_status = run_demo(data_dir, ports, tmp_path / f"demo-{run}.log")
        assert code == 0, output
        assert_expected_outcomes(output)
        # The link is printed while the stack is up (and answers), not after it stopped.
        assert ui_status == 200, output
        link = f"http://127.0.0.1:{ports['ui']}/namespaces/default/workflows?query=WorkflowType"
        assert output.index(link) < output.index("\nSummary") < output.index("stopping the stack")
        ids = {row[1] for row in summary_rows(output)}
        assert not ids & first_ids, "a second run must use fresh order ids"
        first_ids = ids
        # The demo stopped its stack: nothing it started is left.
        assert processes_mentioning(str(data_dir)) == []


def test_plan_has_every_scenario_then_mostly_happy_orders() -> None:
    plan = plan_scenarios(20)
    names = [s.name for s in plan]
    assert len(plan) == 20
    assert set(names[: len(CORE)]) == {make(0).name for make in CORE}
    assert sum(s.expected.outcome is Stage.SETTLED for s in plan) >= 14
    assert [s.name for s in plan_scenarios(3)] == names[:3]
    # Exactly one order of each special kind, whatever the count.
    assert sum(s.approve for s in plan) == sum(s.stuck for s in plan) == 1


def _result(outcome: Stage, **fields: object) -> SellOrderResult:
    now = datetime.now(UTC)
    return SellOrderResult.model_validate(
        {"order_id": "o1", "outcome": outcome, "started_at": now, "finished_at": now, **fields}
    )


def test_verdict_names_each_order_that_missed_its_outcome() -> None:
    plan = plan_scenarios(9)
    orders = [
        DemoOrder(f"o{i}", s, SellOrderInput(order_id=f"o{i}", user_ref="u", max_amount=s.amount))
        for i, s in enumerate(plan)
    ]
    for order in orders:
        expected = order.scenario.expected
        order.result = _result(
            expected.outcome,
            reject_reason=expected.reject_reason,
            needs_attention=expected.needs_attention,
            tx_hashes=["0x" + "ab" * 32] * expected.min_tx_hashes,
        )
    assert verdict(orders) is None

    stuck = next(o for o in orders if o.scenario.stuck)
    stuck.result = _result(Stage.SETTLED, tx_hashes=["0x" + "ab" * 32])
    buy = next(o for o in orders if o.scenario.name == "reject_buy_order")
    buy.result = _result(Stage.REJECTED, reject_reason=RejectReason.USER_REF_MISMATCH)
    orders[0].result = None
    message = verdict(orders)
    assert message is not None and "\n" not in message
    assert message.startswith("3 of 9 orders did not reach their expected outcome")
    assert "expected ≥2 tx hashes, got 1" in message
    assert "expected reject reason not_a_sell_order" in message
    assert "o0 (token_happy): did not finish" in message
