"""The webhooks scenario's harness with a tiny load (figures are printed by `make bench`, never
asserted): every request answered, the wakes reach the target workflows, the receiver stopped."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from offramp.bench.common import Bench
from offramp.bench.stack import BenchSettings, BenchStack
from offramp.bench.webhooks import run_webhooks
from offramp.converter import DATA_CONVERTER


async def test_webhooks_scenario_answers_every_request(tmp_path: Path) -> None:
    stack = BenchStack(BenchSettings(data_dir=tmp_path))
    lines: list[str] = []
    try:
        stack.start()
        client = await Client.connect(
            stack.info.temporal_address, namespace="default", data_converter=DATA_CONVERTER
        )
        row = await run_webhooks(Bench(stack, client, 120, lines.append), 40, 2.0, orders=5)
    finally:
        stack.close()
    assert row.count == 80 and row.outcomes == {"COMPLETED": 80}, row.notes
    assert row.problem() is None
    assert any("p99" in note for note in row.notes)
    wakes = next(note for note in row.notes if note.startswith("receiver after the run"))
    assert "'failed': 0" in wakes and "'sent': 0" not in wakes and "pending 0" in wakes
    (log,) = (tmp_path / "logs").glob("webhooks-*.log")  # one receiver per scenario run
    assert "webhook receiver ready" in log.read_text()
