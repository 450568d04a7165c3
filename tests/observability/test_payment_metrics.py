"""Fee bumps, re-broadcasts and the payment's outcome on the Prometheus endpoint, counted as the
payment's own state counts them (a private anvil that mines nothing until told to)."""

from __future__ import annotations

import asyncio

from eth_account import Account
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import PaymentState, PaymentStatus
from offramp.converter import DATA_CONVERTER
from offramp.devstack.processes import free_port
from offramp.metrics import metrics_runtime
from offramp.observability import order_metrics as m
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)
from tests.observability.prometheus import sample, scrape_until


async def test_fee_bumps_and_rebroadcasts_are_counted(
    dev_env: WorkflowEnvironment, task_queue: str, chain: PayChain
) -> None:
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=DATA_CONVERTER,
        runtime=metrics_runtime(address),
    )
    chain.set_automine(False)  # the first fee is "too low" until the test mines
    async with payment_worker(client, task_queue, {CHAIN: chain.config(bump_after_seconds=0.5)}):
        handle = await start_payment(
            client,
            task_queue,
            payment_request(f"metrics-{chain.chain_id}", Account.create().address, "ETH", "0.5"),
        )

        async def bumped() -> PaymentState | None:
            state = await payment_state(handle)
            return state if len(state.attempts) >= 2 else None

        latest = (await wait_for(bumped, "a fee bump")).attempts[-1].tx_hash
        chain.rpc("anvil_dropTransaction", [latest])

        async def rebroadcast() -> PaymentState | None:
            state = await payment_state(handle)
            return state if any(a.broadcasts >= 2 for a in state.attempts) else None

        await wait_for(rebroadcast, "a re-broadcast")
        chain.set_automine(True)
        chain.mine()
        async with asyncio.timeout(120):
            outcome = await handle.result()
        state = await payment_state(handle)
    assert outcome.status is PaymentStatus.CONFIRMED
    bumps = len(state.attempts) - 1
    resent = sum(a.broadcasts - 1 for a in state.attempts)
    assert bumps >= 1 and resent >= 1
    url = f"http://{address}/metrics"
    tq = {"task_queue": task_queue, "chain": CHAIN}
    text = await asyncio.to_thread(
        scrape_until,
        url,
        lambda t: sample(t, m.PAYMENTS_FINISHED, status="confirmed", asset="ETH", **tq) == 1,
        "the confirmed payment",
    )
    assert sample(text, m.PAYMENT_FEE_BUMPS, **tq) == bumps
    assert sample(text, m.PAYMENT_REBROADCASTS, workflow_type="Payment", **tq) == resent
