"""Acceptance: the worker process is SIGKILLed after a broadcast and before the activity reports;
after a restart the payment completes with the same hash and exactly one transfer."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from eth_account import Account
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import PaymentRequest, PaymentStatus, payment_workflow_id
from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from tests.chain.rpc_proxy import rpc_proxy
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    key_forms,
    payment_state,
    start_payment,
    wait_for,
    wallet_id,
)


async def test_sigkill_after_broadcast_same_hash_one_transfer(
    dev_env: WorkflowEnvironment, task_queue: str, chain: PayChain, tmp_path: Path
) -> None:
    client: Client = dev_env.client
    recipient = Account.create().address
    start_nonce = chain.nonce()
    with rpc_proxy(chain.local.rpc_url) as proxy:
        config = chain.config(rpc_url=proxy.url, rpc_timeout_seconds=3.0)
        env = {
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_CHAINS": json.dumps({CHAIN: config.model_dump(mode="json")}),
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
        }
        log_path = tmp_path / "worker.log"
        first = worker_process(env, log_path, name="worker-1").start()
        second = worker_process(env, log_path, name="worker-2")
        try:
            wait_worker_ready(first)
            proxy.on_broadcast = lambda _hash: first.kill()  # SIGKILL, mid-activity
            handle = await start_payment(
                client,
                task_queue,
                PaymentRequest(
                    payment_id=f"kill-{chain.chain_id}",
                    chain=CHAIN,
                    asset="USDC",
                    recipient=recipient,
                    amount=Decimal("77.000001"),
                ),
            )

            async def killed() -> bool:
                return proxy.fired.is_set()

            await wait_for(killed, "the broadcast and the kill")
            assert not first.running()
            killed_hash = proxy.broadcasts[0]
            second.start()
            wait_worker_ready(second)
            outcome = await handle.result()
            state = await payment_state(handle)
        finally:
            first.stop()
            second.stop()

    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert outcome.tx_hash == killed_hash
    assert outcome.tx_hashes == [killed_hash]
    assert chain.token_balance(recipient) == 77_000_001  # exactly one transfer
    assert chain.nonce() == start_nonce + 1
    # The broadcast activity ran twice (the first attempt died with the worker), same bytes.
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) >= 2
    assert proxy.broadcasts.count(killed_hash) >= 1
    await assert_no_key_in_histories(
        client, [payment_workflow_id(f"kill-{chain.chain_id}"), wallet_id(chain)]
    )
    worker_log = log_path.read_bytes()
    assert not any(form in worker_log for form in key_forms())
    assert state.attempts[0].broadcasts == 1  # the killed attempt never reported
    print(f"\n{state.events}")
    print(
        f"\nkilled after broadcasting {killed_hash}; confirmed {outcome.tx_hash} "
        f"in block {outcome.block_number}; sends seen by the proxy: {proxy.broadcasts}"
    )
