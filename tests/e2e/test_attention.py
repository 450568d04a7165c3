"""Provider status `unknown` for too long flags the order for a person while it keeps following;
the overall deadline then ends it UNRESOLVED (the transfer itself confirmed)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)


async def test_stuck_unknown_flags_then_keeps_following(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, scenario="stuck_unknown")
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client,
            task_queue,
            order_id,
            unknown_alert_after=timedelta(seconds=2),
            settlement_timeout=timedelta(seconds=20),
        )
        # Flagged while still following the provider: stage TRACKING, NeedsAttention set.
        flagged: SellOrderState | None = None
        for _ in range(300):  # bounded: 30 s
            state = await handle.query("state", result_type=SellOrderState)
            if state.needs_attention:
                flagged = state
                break
            await asyncio.sleep(0.1)
        assert flagged is not None, "never flagged"
        assert flagged.stage is Stage.TRACKING
        assert flagged.order.transfer_status == "unknown"
        assert "unknown for over" in (flagged.attention_reason or "")
        result = await handle.result()
    assert result.outcome is Stage.UNRESOLVED and result.needs_attention
    assert sc.token_transfers_to(deposit) == [10 * 10**6]
