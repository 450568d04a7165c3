"""A node that drops the payment's transaction over and over: the Payment re-broadcasts a bounded
number of times, then flags a person and waits without growing its history (the activity re-sends
the same bytes itself), and still confirms once the node keeps the transaction."""

from __future__ import annotations

import asyncio
import contextlib

from eth_account import Account
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from offramp.chain.models import PaymentState, PaymentStatus, payment_workflow_id
from tests.chain.dropper import Dropper
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)
from workflows.payment import MAX_SEND_ROUNDS, PATCH_BOUNDED_SEND_ROUNDS

# What MAX_SEND_ROUNDS re-broadcasts may add (a round is ~17 events after a drop) plus the
# preflight, the nonce, the first broadcast and the end: the history must stay under this.
HISTORY_BOUND = 25 * MAX_SEND_ROUNDS + 100


async def history_length(client: Client, workflow_id: str) -> int:
    return len((await client.get_workflow_handle(workflow_id).fetch_history()).events)


async def test_a_node_that_keeps_dropping_the_tx_does_not_grow_the_history(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    start_nonce = chain.nonce()
    chain.set_automine(False)
    payment_id = f"dropped-forever-{chain.chain_id}"
    workflow_id = payment_workflow_id(payment_id)
    config = chain.config(bump_after_seconds=600)  # never stuck: only drops here
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        handle = await start_payment(
            dev_client, task_queue, payment_request(payment_id, recipient, "ETH", "0.3")
        )
        dropper = Dropper(chain, handle)
        dropping = asyncio.create_task(dropper.run())
        try:

            async def flagged() -> PaymentState | None:
                state = await payment_state(handle)
                return state if state.needs_attention else None

            state = await wait_for(flagged, "the bound on re-broadcasts", limit=240)
            assert f"{MAX_SEND_ROUNDS} re-broadcasts" in (state.attention_reason or "")
            at_flag = await history_length(dev_client, workflow_id)
            drops_at_flag = dropper.drops

            # The node goes on dropping it; the activity goes on re-sending the same bytes.
            async def dropped_thrice_more() -> bool:
                return dropper.drops >= drops_at_flag + 3

            await wait_for(dropped_thrice_more, "re-sends after the bound", limit=120)
            while_dropping = await history_length(dev_client, workflow_id)
        finally:
            dropping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dropping
        chain.set_automine(True)
        chain.mine()

        async def known_again() -> bool:  # re-sent by the activity, mined by automine
            return chain.nonce() == start_nonce + 1

        await wait_for(known_again, "the re-sent transaction to be mined", limit=120)
        chain.mine()
        outcome = await handle.result()
        history = await handle.fetch_history()

    print(
        f"\n{dropper.drops} drops; history {at_flag} events at the bound, {while_dropping} after "
        f"3+ more drops, {len(history.events)} at the end (bound {HISTORY_BOUND})"
    )
    assert while_dropping - at_flag <= 6  # nothing but the wait's own events
    assert len(history.events) < HISTORY_BOUND
    markers = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and PATCH_BOUNDED_SEND_ROUNDS.encode() in e.SerializeToString()
    ]
    assert len(markers) == 1
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert outcome.tx_hashes == [outcome.tx_hash]  # the same bytes every time, never re-signed
    assert chain.nonce() == start_nonce + 1
    assert chain.eth_balance(recipient) == 3 * 10**17  # paid once
    await assert_no_key_in_histories(dev_client, [workflow_id])
