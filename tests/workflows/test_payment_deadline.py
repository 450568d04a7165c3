"""A payment never signs past its `pay_before` (the provider's deadline less a margin): refused
before a nonce when it is already late, and its nonce released unsigned (then filled) when the
nonce comes late, e.g. after a long queue at the hot wallet (seen at 1,000 orders on one wallet:
195 deposits arrived after the simulator's orders had expired)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from eth_account import Account
from temporalio.client import Client

from offramp.chain import names
from offramp.chain.models import PaymentRequest, PaymentStatus, WalletSummary
from offramp.rejections import RejectReason
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_worker,
    start_payment,
    wallet_id,
)

WITHIN = 120.0  # seconds: generous for a loaded machine, but bounded


def usdc(payment_id: str, recipient: str, pay_before: datetime | None) -> PaymentRequest:
    return PaymentRequest(
        payment_id=payment_id,
        chain=CHAIN,
        asset="USDC",
        recipient=recipient,
        amount=Decimal("3"),
        pay_before=pay_before,
    )


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not await condition():
        assert time.monotonic() < deadline, f"not within {WITHIN:.0f} s: {what}"
        await asyncio.sleep(0.2)


async def test_a_late_payment_is_refused_before_a_nonce(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    bob = Account.create().address
    start_nonce = chain.nonce()
    late = datetime.now(UTC) - timedelta(seconds=1)
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        out = await (await start_payment(dev_client, task_queue, usdc("late", bob, late))).result()
    assert out.status is PaymentStatus.REJECTED, out
    assert out.rejection_code is RejectReason.ORDER_EXPIRED
    assert out.nonce is None and not out.tx_hashes
    assert chain.nonce() == start_nonce and chain.token_balance(bob) == 0


async def test_a_nonce_that_comes_after_the_deadline_is_released_unsigned(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    alice, bob = Account.create().address, Account.create().address
    start_nonce = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        first = await start_payment(dev_client, task_queue, usdc("on-time", alice, None))
        assert (await first.result()).status is PaymentStatus.CONFIRMED
        wallet = dev_client.get_workflow_handle(wallet_id(chain))
        await wallet.execute_update(names.PAUSE_UPDATE, "test: hold the queue")

        pay_before = datetime.now(UTC) + timedelta(seconds=3)
        held = await start_payment(dev_client, task_queue, usdc("held", bob, pay_before))

        async def queued() -> bool:
            summary: WalletSummary = await wallet.query(
                names.SUMMARY_QUERY, result_type=WalletSummary
            )
            return summary.queued == 1

        await until(queued, "the held payment queued at the paused wallet")

        async def past_deadline() -> bool:
            return datetime.now(UTC) > pay_before + timedelta(seconds=1)

        await until(past_deadline, "the held payment's deadline passed")
        await wallet.execute_update(names.RESUME_UPDATE)
        out = await held.result()

        async def filled() -> bool:  # the released nonce is filled: nothing blocks later ones
            return bool(chain.nonce() == start_nonce + 2)

        await until(filled, "the released nonce filled")
    assert out.status is PaymentStatus.REJECTED, out
    assert out.rejection_code is RejectReason.ORDER_EXPIRED
    assert not out.tx_hashes and "nothing signed" in (out.reason or "")
    assert chain.token_balance(bob) == 0
