"""A pool of hot wallets on one chain (real worker, real anvil): payments spread over the wallets
that can cover them, each wallet's nonces stay contiguous from its own chain nonce, and a wallet
too poor for the amount is never chosen. Native payments are gas-estimated (a contract recipient
needs more than 21,000 gas); one the recipient would refuse is rejected before any nonce."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from eth_account import Account
from temporalio.client import Client

from offramp.chain.models import (
    PaymentStatus,
    RejectionCode,
    hot_wallet_workflow_id,
    payment_workflow_id,
)
from offramp.devstack.chain import POOL_WALLETS, fund_hot_wallet, mint
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
)

# Runtime code of a contract whose fallback stores msg.value (CALLVALUE PUSH1 0 SSTORE STOP):
# receiving ETH costs a fresh SSTORE, far above 21,000 gas.
STORING_RECEIVER = "0x3460005500"


def expected_wallet(payment_id: str, wallets: list[str]) -> str:
    """offramp.chain.pool's rendezvous choice among wallets with equal-enough headroom."""
    return min(wallets, key=lambda w: hashlib.sha256(f"{payment_id}|{w.lower()}".encode()).digest())


async def test_payments_spread_over_the_pool_with_contiguous_nonces(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    a, b, c = POOL_WALLETS[:3]
    fund_hot_wallet(chain.w3, chain.token, wallet=b)
    mint(chain.w3, chain.token, c, 10 * 10**6)  # 10 USDC: cannot cover a 50 USDC payment
    chain.rpc("anvil_setNonce", [b, hex(5)])  # its own history: nonces must follow it, not a's
    starts = {w: chain.nonce(wallet=w) for w in (a, b, c)}
    config = chain.config(hot_wallets=[a, b, c])
    recipients = [Account.create().address for _ in range(8)]
    ids = [f"pool3-{chain.chain_id}-{i}" for i in range(8)]
    async with payment_worker(dev_client, task_queue, {CHAIN: config}, pool_size=3):
        handles = [
            await start_payment(dev_client, task_queue, payment_request(pid, to, "USDC", "50"))
            for pid, to in zip(ids, recipients, strict=True)
        ]
        outcomes = await asyncio.gather(*(h.result() for h in handles))
    assert all(o.status is PaymentStatus.CONFIRMED for o in outcomes), outcomes
    assert all(chain.token_balance(to) == 50 * 10**6 for to in recipients)
    by_wallet: dict[str, list[int]] = {a: [], b: [], c: []}
    for pid, outcome in zip(ids, outcomes, strict=True):
        assert outcome.hot_wallet == expected_wallet(pid, [a, b]), pid
        assert outcome.nonce is not None
        by_wallet[outcome.hot_wallet].append(outcome.nonce)
    assert by_wallet[a] and by_wallet[b] and not by_wallet[c]
    for wallet, nonces in by_wallet.items():
        first = starts[wallet]
        assert sorted(nonces) == list(range(first, first + len(nonces))), (wallet, nonces)
        assert chain.nonce(wallet=wallet) == first + len(nonces)
    for wallet in (a, b):  # one nonce entity per pool wallet
        entity = hot_wallet_workflow_id(chain.chain_id, wallet)
        await dev_client.get_workflow_handle(entity).describe()


async def test_native_payment_to_a_contract_is_gas_estimated(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    receiver = Account.create().address
    chain.rpc("anvil_setCode", [receiver, STORING_RECEIVER])
    start = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        request = payment_request(f"to-contract-{uuid.uuid4()}", receiver, "ETH", "0.01")
        handle = await start_payment(dev_client, task_queue, request)
        outcome = await handle.result()
        state = await payment_state(handle)
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert outcome.gas_used is not None and outcome.gas_used > 40_000  # 21,000 would have failed
    assert state.attempts[0].fields.gas >= outcome.gas_used
    assert chain.eth_balance(receiver) == 10**16
    assert int(chain.rpc("eth_getStorageAt", [receiver, "0x0", "latest"]), 16) == 10**16
    assert chain.nonce() == start + 1


async def test_native_payment_a_contract_refuses_is_rejected_before_any_nonce(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    start = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        # The test token has no payable fallback: sending it ETH reverts.
        payment_id = f"to-token-{uuid.uuid4()}"
        request = payment_request(payment_id, chain.token, "ETH", "0.01")
        outcome = await (await start_payment(dev_client, task_queue, request)).result()
    assert outcome.status is PaymentStatus.REJECTED, outcome
    assert outcome.rejection_code is RejectionCode.TRANSFER_WOULD_FAIL
    assert not outcome.nonce_reserved and chain.nonce() == start
    handle = dev_client.get_workflow_handle(payment_workflow_id(payment_id))
    assert "reserve_nonce" not in (await handle.fetch_history()).to_json()
