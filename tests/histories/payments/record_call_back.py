"""Record a HotWallet run that took `hot-wallet-call-back` (payments beyond its queue of 2
waitlisted, then called back) and a Payment that took `payment-call-back` and was called back.

    .venv/bin/python -m tests.histories.payments.record_call_back
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from offramp.chain.models import payment_workflow_id
from tests.chain.support import pay_chain
from tests.dev_server import dev_server
from tests.workflows.test_payment_waitlist import pay_through_a_queue_of_two

HISTORIES_DIR = Path(__file__).parent


async def record() -> None:
    async with dev_server() as env:
        with tempfile.TemporaryDirectory() as tmp, pay_chain(Path(tmp)) as chain:
            run = await pay_through_a_queue_of_two(env.client, f"record-{uuid.uuid4()}", chain)
            await run.entity.terminate("recorded")
            called_back = run.called_back()
            if not called_back:
                raise SystemExit("no payment was called back: record again")
            payment = env.client.get_workflow_handle(payment_workflow_id(called_back[0]))
            histories = {
                "hot_wallet_call_back": await run.entity.fetch_history(),
                "payment_called_back": await payment.fetch_history(),
            }
    for name, history in histories.items():
        (HISTORIES_DIR / f"{name}.json").write_text(history.to_json() + "\n")
        print(f"{name}: {history.workflow_id}, {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record())
