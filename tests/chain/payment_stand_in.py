"""A stand-in for a Payment run that reserved with a given hot wallet: it answers `state` as a
Payment does (the real one sets `hot_wallet` from its recorded preflight) and waits. Its own
module, so the workflow sandbox imports nothing but this."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp.chain.models import PaymentState


@workflow.defn(name="PaymentStandIn")
class PaymentStandIn:
    @workflow.init
    def __init__(self, hot_wallet: str | None) -> None:
        self._state = PaymentState(payment_id="stand-in", hot_wallet=hot_wallet)

    @workflow.query(name="state")
    def state(self) -> PaymentState:
        return self._state

    @workflow.run
    async def run(self, hot_wallet: str | None) -> None:
        await workflow.wait_condition(lambda: False)
