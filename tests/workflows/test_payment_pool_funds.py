"""A payment no pool wallet can cover now (real worker, dev server, anvil). In `wait` mode (the
default) the preflight does not refuse it: it picks the best-funded wallet, fixes a generous gas
limit (an estimate would fail for the balance alone) and the wallet's entity holds it without a
nonce (NeedsAttention "insufficient funds") until a top-up; then it pays exactly once. In
`reject` mode it is REJECTED insufficient_balance before any nonce. A short token transfer that
would revert for another reason (a blocked recipient) is refused in wait mode too."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eth_account import Account
from temporalio.client import Client, WorkflowHandle

from offramp.chain.models import PaymentStage, PaymentState, PaymentStatus, RejectionCode
from offramp.devstack.chain import (
    DEPLOYER,
    HOT_WALLET,
    POOL_KEYS,
    POOL_WALLETS,
    _send,
    mint,
    token_contract,
)
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)


def leave_tokens(chain: PayChain, wallet: str, base_units: int) -> None:
    """Leave exactly `base_units` of the token in `wallet` (the rest to the deployer)."""
    excess = chain.token_balance(wallet) - base_units
    if excess > 0:
        key = POOL_KEYS[POOL_WALLETS.index(wallet)]
        data = token_contract(chain.w3, chain.token).functions.transfer(DEPLOYER, excess)
        _send(chain.w3, key, {"to": chain.token, "data": data._encode_transaction_data()})
    elif excess < 0:
        mint(chain.w3, chain.token, wallet, -excess)
    assert chain.token_balance(wallet) == base_units


async def held_for_funds(handle: WorkflowHandle[Any, Any]) -> PaymentState:
    async def waiting() -> PaymentState | None:
        state = await payment_state(handle)
        reason = state.attention_reason or ""
        return state if state.needs_attention and "insufficient funds" in reason else None

    return await wait_for(waiting, "a payment held for funds", limit=60)


async def test_a_token_payment_larger_than_every_wallet_waits_then_pays_once(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    a, b = POOL_WALLETS[:2]
    leave_tokens(chain, a, 10 * 10**6)
    leave_tokens(chain, b, 30 * 10**6)  # the best-funded, still short of 50
    starts = {w: chain.nonce(wallet=w) for w in (a, b)}
    config = chain.config(hot_wallets=[a, b], funds_recheck_seconds=0.5)
    recipient = Account.create().address
    async with payment_worker(dev_client, task_queue, {CHAIN: config}, pool_size=2):
        request = payment_request(f"short-{uuid.uuid4()}", recipient, "USDC", "50")
        handle = await start_payment(dev_client, task_queue, request)
        state = await held_for_funds(handle)
        assert state.stage is PaymentStage.RESERVING and state.hot_wallet == b
        assert not state.nonce_reserved and state.attempts == []
        assert {w: chain.nonce(wallet=w) for w in (a, b)} == starts  # nothing sent
        mint(chain.w3, chain.token, b, 20 * 10**6)  # the top-up: b now holds exactly 50
        outcome = await handle.result()
        done = await payment_state(handle)
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert outcome.hot_wallet == b and outcome.nonce == starts[b]
    assert not done.needs_attention  # cleared once the nonce was given
    assert done.attempts[0].fields.gas == config.assets["USDC"].unfunded_gas_limit
    assert chain.token_balance(recipient) == 50 * 10**6 and chain.token_balance(b) == 0
    assert chain.nonce(wallet=b) == starts[b] + 1 and chain.nonce(wallet=a) == starts[a]


async def test_a_native_payment_larger_than_the_wallet_waits_then_pays_once(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    chain.rpc("anvil_setBalance", [HOT_WALLET, hex(5 * 10**17)])  # 0.5 ETH, the payment is 0.7
    start = chain.nonce()
    config = chain.config(funds_recheck_seconds=0.5)
    recipient = Account.create().address
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        request = payment_request(f"short-eth-{uuid.uuid4()}", recipient, "ETH", "0.7")
        handle = await start_payment(dev_client, task_queue, request)
        await held_for_funds(handle)
        assert chain.nonce() == start
        chain.rpc("anvil_setBalance", [HOT_WALLET, hex(10 * 10**18)])
        outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED and outcome.nonce == start
    assert chain.eth_balance(recipient) == 7 * 10**17 and chain.nonce() == start + 1


async def test_in_reject_mode_a_payment_no_wallet_covers_is_refused_before_any_nonce(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    leave_tokens(chain, HOT_WALLET, 10 * 10**6)
    start = chain.nonce()
    config = chain.config(on_insufficient_funds="reject")
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        request = payment_request(
            f"short-rej-{uuid.uuid4()}", Account.create().address, "USDC", "50"
        )
        outcome = await (await start_payment(dev_client, task_queue, request)).result()
    assert outcome.status is PaymentStatus.REJECTED, outcome
    assert outcome.rejection_code is RejectionCode.INSUFFICIENT_BALANCE
    assert not outcome.nonce_reserved and chain.nonce() == start


async def test_in_wait_mode_a_short_transfer_that_would_revert_anyway_is_refused(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    leave_tokens(chain, HOT_WALLET, 10 * 10**6)  # short of 50, but holds some: a probe runs
    recipient = Account.create().address
    chain.block_recipient(recipient)
    start = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        request = payment_request(f"short-blocked-{uuid.uuid4()}", recipient, "USDC", "50")
        outcome = await (await start_payment(dev_client, task_queue, request)).result()
    assert outcome.status is PaymentStatus.REJECTED, outcome
    assert outcome.rejection_code is RejectionCode.TRANSFER_WOULD_FAIL
    assert not outcome.nonce_reserved and chain.nonce() == start


# Two entities, four payments and two confirmations: minutes on a loaded 2-core machine.
@pytest.mark.timeout(600)
async def test_concurrent_payments_over_a_short_pool_wait_at_their_wallet_then_pay_once(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    """The pool spreads by on-chain balance (reserved amounts are not subtracted); the entity's
    admission is the guard: 60 USDC per wallet covers one 50 USDC payment each, so at least two
    of four wait without a nonce wherever they were queued, and pay after the top-up. The
    payment id picks among equally funded wallets, so all four may queue at one wallet (1 in 8):
    the top-up covers the three held there."""
    a, b = POOL_WALLETS[:2]
    for wallet in (a, b):
        leave_tokens(chain, wallet, 60 * 10**6)
    starts = {w: chain.nonce(wallet=w) for w in (a, b)}
    config = chain.config(hot_wallets=[a, b], funds_recheck_seconds=0.5)
    recipients = [Account.create().address for _ in range(4)]
    async with payment_worker(dev_client, task_queue, {CHAIN: config}, pool_size=2):
        handles = [
            await start_payment(
                dev_client,
                task_queue,
                payment_request(f"spread-{i}-{uuid.uuid4()}", to, "USDC", "50"),
            )
            for i, to in enumerate(recipients)
        ]

        async def settled_or_held() -> list[PaymentState] | None:
            states = [await payment_state(h) for h in handles]
            done = [s for s in states if s.stage is PaymentStage.DONE]
            held = [s for s in states if s.needs_attention and not s.nonce_reserved]
            return states if len(done) + len(held) == 4 and len(held) >= 2 else None

        states = await wait_for(settled_or_held, "two paid and the rest held", limit=300)
        held = [s for s in states if s.stage is not PaymentStage.DONE]
        assert all("insufficient funds" in (s.attention_reason or "") for s in held)
        assert all(s.attempts == [] for s in held)
        for wallet in (a, b):
            mint(chain.w3, chain.token, wallet, 150 * 10**6)  # the top-up: 10 + 150 >= 3 x 50
        outcomes = [await h.result() for h in handles]
    assert [o.status for o in outcomes] == [PaymentStatus.CONFIRMED] * 4, outcomes
    assert all(chain.token_balance(to) == 50 * 10**6 for to in recipients)
    for wallet in (a, b):
        nonces = sorted(o.nonce for o in outcomes if o.hot_wallet == wallet and o.nonce is not None)
        assert nonces == list(range(starts[wallet], starts[wallet] + len(nonces))), wallet
        assert chain.nonce(wallet=wallet) == starts[wallet] + len(nonces)
