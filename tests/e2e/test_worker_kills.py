"""50 concurrent orders while the worker is SIGKILLed at random moments (fixed seed) and
restarted: every order reaches its expected outcome with exactly one transfer each."""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.devstack.processes import ManagedProcess
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.orders.models import RejectReason, SellOrderResult, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import SellChain, create_sim_order, engine_settings, start_order

SEED = 20261122
ORDERS = 50
KILLS = 4


def order_plan(rng: random.Random) -> list[tuple[dict[str, Any], Stage, RejectReason | None]]:
    """(simulator fields, expected outcome, expected reject reason) for each order."""
    plan: list[tuple[dict[str, Any], Stage, RejectReason | None]] = []
    for i in range(ORDERS):
        if i % 10 == 9:
            plan.append(({"order_type": "buy"}, Stage.REJECTED, RejectReason.NOT_A_SELL_ORDER))
        elif i % 10 == 4:
            wei = rng.randint(1, 10**16)
            plan.append(({"asset": "ETH", "amount": Decimal(wei) / 10**18}, Stage.SETTLED, None))
        else:
            units = rng.randint(1, 2_000 * 10**6)
            plan.append(({"asset": "USDC", "amount": Decimal(units) / 10**6}, Stage.SETTLED, None))
    return plan


async def test_fifty_orders_survive_worker_kills(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    client = dev_env.client
    settings = engine_settings(sc, task_queue, rpc_timeout_seconds=5.0)
    env = {
        "OFFRAMP_TASK_QUEUE": task_queue,
        "OFFRAMP_CHAINS": json.dumps(
            {name: c.model_dump(mode="json") for name, c in settings.chains.items()}
        ),
        "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        "OFFRAMP_KADO_BASE_URL": sc.simulator_url,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
    }
    plan = order_plan(rng)
    order_ids = [await create_sim_order(admin, **fields) for fields, _, _ in plan]
    deposits = [(await admin.order(oid)).data["depositAddress"] for oid in order_ids]

    workers: list[ManagedProcess] = []

    def start_worker() -> ManagedProcess:
        proc = worker_process(env, tmp_path / "worker.log", name=f"worker-{len(workers)}")
        workers.append(proc.start())
        wait_worker_ready(proc)
        return proc

    try:
        current = start_worker()
        handles = await asyncio.gather(*(start_order(client, task_queue, oid) for oid in order_ids))
        results_task = asyncio.gather(*(h.result() for h in handles))
        # Chaos: SIGKILL at seeded random moments, restart at once.
        in_flight_at_kill = []
        for _ in range(KILLS):
            await asyncio.wait([results_task], timeout=rng.uniform(0.5, 4.0))
            in_flight_at_kill.append(not results_task.done())
            current.kill()
            current = start_worker()
        async with asyncio.timeout(600):
            results: list[SellOrderResult] = await results_task
    finally:
        for proc in workers:
            proc.kill()

    assert len(workers) == KILLS + 1
    assert all(in_flight_at_kill), "a kill came after every order had finished"
    for (fields, outcome, reason), result, deposit in zip(plan, results, deposits, strict=True):
        assert result.outcome is outcome, (fields, result.reason)
        assert result.reject_reason is reason
        if outcome is Stage.SETTLED:
            assert result.amount_base_units is not None
            if fields["asset"] == "USDC":
                assert sc.token_transfers_to(deposit) == [result.amount_base_units]
            else:
                assert sc.native_transfers_to(deposit) == [result.amount_base_units]
        else:
            assert sc.token_transfers_to(deposit) == []
