"""Acceptance: 100 concurrent payments from one hot wallet, mixed native and token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
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
    pay_chain,
    payment_worker,
    start_payment,
    wallet_id,
)

PAYMENTS = 100


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[PayChain]:
    with pay_chain(tmp_path) as chain:
        yield chain


async def test_100_concurrent_payments_exactly_once(
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
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
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
    assert sorted(r.nonce for r in wallet.reservations.values()) == nonces
    assert {r.status for r in wallet.reservations.values()} == {ReservationStatus.CONFIRMED}
    history = await dev_client.get_workflow_handle(wallet_id(chain)).fetch_history()
    counts: dict[str, int] = {}
    for event in history.events:
        name = EventType.Name(event.event_type)
        counts[name] = counts.get(name, 0) + 1
    assert counts.get("EVENT_TYPE_WORKFLOW_TASK_FAILED", 0) == 0, counts
    searched = await assert_no_key_in_histories(
        dev_client, [payment_workflow_id(r.payment_id) for r in requests] + [wallet_id(chain)]
    )
    print(
        f"\n100 payments: {elapsed:.1f}s, nonces {nonces[0]}..{nonces[-1]}, "
        f"{searched} history bytes searched for the key; hot wallet history {counts}"
    )
