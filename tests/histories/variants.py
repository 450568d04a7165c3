"""Changed versions of SellOrderWorkflow for the replay guard. A workflow module of its own: the
sandbox re-imports it, so it imports no I/O library."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp.orders.models import WORKFLOW_TYPE, SellOrderResult
    from workflows.order.workflow import SellOrderWorkflow


@workflow.defn(name=WORKFLOW_TYPE)
class IncompatibleSellOrder(SellOrderWorkflow):
    """Reorders commands: a timer before the first fetch."""

    @workflow.run
    async def run(self, input: Any) -> SellOrderResult:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(input)


@workflow.defn(name=WORKFLOW_TYPE)
class PatchedSellOrder(SellOrderWorkflow):
    """The same change behind a patch: histories recorded before it take the old path."""

    @workflow.run
    async def run(self, input: Any) -> SellOrderResult:
        if workflow.patched("sleep-before-fetch"):
            await workflow.sleep(timedelta(seconds=1))
        return await super().run(input)
