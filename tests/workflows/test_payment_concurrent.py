"""Acceptance: a burst of concurrent payments from one hot wallet, mixed native and token, on a
worker whose workflow cache is far smaller than the open workflows (every task may replay from
history): exactly once, contiguous nonces, no workflow task failure (no NondeterminismError), and
the billed actions of the nonce step per payment."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from eth_account import Account
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from offramp.chain.models import (
    HotWalletState,
    PaymentRequest,
    PaymentStatus,
    ReservationStatus,
    payment_workflow_id,
)
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    payment_worker,
    start_payment,
    wallet_id,
)

# Scaled down together (was 120 payments, limit 16, cache 10): the burst is still 6x the in-flight
# limit (a queue at the entity) and ~10x the cache, so the same paths run in a third of the time.
PAYMENTS = 48
IN_FLIGHT_LIMIT = 8
CACHE = 5  # far below the open workflows: evictions and replays all the time


async def test_burst_of_concurrent_payments_exactly_once_with_a_small_cache(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    requests = []
    for i in range(PAYMENTS):
        native = i % 2 == 0
        requests.append(
            PaymentRequest(
                payment_id=f"conc-{chain.chain_id}-{i}",
                chain=CHAIN,
                asset="ETH" if native else "USDC",
                recipient=Account.create().address,
                # Distinct amounts, exact to the last base unit.
                amount=Decimal(f"0.{i + 1:03d}000000000000007")
                if native
                else Decimal(f"{i + 1}.000{i:03d}"),
            )
        )
    start_nonce = chain.nonce()
    started = time.monotonic()
    config = chain.config(in_flight_limit=IN_FLIGHT_LIMIT)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}, max_cached_workflows=CACHE):
        handles = await asyncio.gather(
            *(start_payment(dev_client, task_queue, r) for r in requests)
        )
        outcomes = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.monotonic() - started
        wallet = await dev_client.get_workflow_handle(wallet_id(chain)).query(
            "state", result_type=HotWalletState
        )

    assert [o.status for o in outcomes] == [PaymentStatus.CONFIRMED] * PAYMENTS, [
        (o.payment_id, o.status, o.reason)
        for o in outcomes
        if o.status is not PaymentStatus.CONFIRMED
    ]
    nonces = sorted(o.nonce for o in outcomes if o.nonce is not None)
    assert nonces == list(range(start_nonce, start_nonce + PAYMENTS)), "nonces not contiguous"
    assert chain.nonce() == start_nonce + PAYMENTS, "the wallet sent something else too"
    for request, outcome in zip(requests, outcomes, strict=True):
        if request.asset == "ETH":
            expected = int(request.amount * 10**18)
            assert chain.eth_balance(request.recipient) == expected
        else:
            expected = int(request.amount * 10**6)
            assert chain.token_balance(request.recipient) == expected
        assert outcome.amount_base_units == expected
        assert outcome.tx_hash is not None and outcome.tx_hashes == [outcome.tx_hash]
    assert len({o.tx_hash for o in outcomes}) == PAYMENTS
    # The entity saw every nonce confirmed, none left in flight.
    assert wallet.in_flight() == 0
    assert wallet.next_nonce == start_nonce + PAYMENTS
    assert wallet.reservations == {}  # final ones live in the bounded index only
    assert sorted(r.nonce for r in wallet.recent.values()) == nonces
    assert {r.status for r in wallet.recent.values()} == {ReservationStatus.CONFIRMED}
    history = await dev_client.get_workflow_handle(wallet_id(chain)).fetch_history()
    counts: dict[str, int] = {}
    for event in history.events:
        name = EventType.Name(event.event_type)
        counts[name] = counts.get(name, 0) + 1
    assert counts.get("EVENT_TYPE_WORKFLOW_TASK_FAILED", 0) == 0, counts
    actions = [
        await nonce_step_actions(dev_client, payment_workflow_id(r.payment_id)) for r in requests
    ]
    # One request_nonce activity + its signal-with-start, one re-ask timer, one answer signal.
    assert max(actions) == 4, actions
    searched = await assert_no_key_in_histories(
        dev_client, [payment_workflow_id(r.payment_id) for r in requests] + [wallet_id(chain)]
    )
    print(
        f"\n{PAYMENTS} payments (cache {CACHE}): {elapsed:.1f}s, nonces {nonces[0]}..{nonces[-1]}, "
        f"nonce-step actions per payment {sum(actions) / len(actions):.2f} (max {max(actions)}), "
        f"{searched} history bytes searched for the key; hot wallet history {counts}"
    )


async def nonce_step_actions(client: Client, workflow_id: str) -> int:
    """Billed actions of a payment's nonce step, from its history: every request_nonce activity
    attempt (each also signals-with-start the entity), timers before the first signing, and
    the entity's answer signals. Asserts the payment had no workflow task failure."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    request_ids: set[int] = set()
    attempts = timers = answers = 0
    for event in history.events:
        kind = event.event_type
        assert kind != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, workflow_id
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name == "sign_and_broadcast":
                break
            if name == "request_nonce":
                request_ids.add(event.event_id)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in request_ids:
                attempts += started.attempt
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timers += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            answers += (
                event.workflow_execution_signaled_event_attributes.signal_name == "nonce_answer"
            )
    return 2 * attempts + timers + answers
