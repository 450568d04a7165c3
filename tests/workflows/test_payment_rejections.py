"""Acceptance: refusals before any nonce is taken, each with its reason; the daily cap; a chain
whose RPC reports another chain id is not served."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from eth_account import Account
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from offramp.chain.models import (
    PaymentOutcome,
    PaymentRequest,
    PaymentStatus,
    RejectionCode,
    payment_workflow_id,
)
from offramp.devstack.chain import HOT_WALLET
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    payment_worker,
    start_payment,
    wallet_id,
)


def _bad_checksum(address: str) -> str:
    body = address[2:]
    i = next(i for i, c in enumerate(body) if c.isalpha())
    flipped = body[i].lower() if body[i].isupper() else body[i].upper()
    return "0x" + body[:i] + flipped + body[i + 1 :]


async def test_rejected_before_any_nonce(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    good = Account.create().address
    blocked = Account.create().address
    chain.block_recipient(blocked)
    forbidden = Account.create().address
    wrong = chain.config(chain_id=chain.chain_id + 1, wallet_entity_suffix="wrong")
    cases: dict[str, tuple[dict[str, object], RejectionCode, str]] = {
        "reverting-token": (
            {"asset": "USDC", "recipient": blocked},
            RejectionCode.TRANSFER_WOULD_FAIL,
            "recipient blocked",
        ),
        "disallowed-token": ({"asset": "DAI"}, RejectionCode.ASSET_NOT_ALLOWED, "DAI"),
        "other-contract": (
            {"asset": "USDC", "expected_token_address": Account.create().address},
            RejectionCode.TOKEN_ADDRESS_MISMATCH,
            "not the configured USDC contract",
        ),
        "not-hex": (
            {"recipient": "not-an-address"},
            RejectionCode.DEPOSIT_ADDRESS_INVALID,
            "not a 0x",
        ),
        "short": ({"recipient": "0x1234"}, RejectionCode.DEPOSIT_ADDRESS_INVALID, "20-byte"),
        "bad-checksum": (
            {"recipient": _bad_checksum(good)},
            RejectionCode.DEPOSIT_ADDRESS_INVALID,
            "EIP-55",
        ),
        "zero": (
            {"recipient": "0x" + "0" * 40},
            RejectionCode.DEPOSIT_ADDRESS_INVALID,
            "zero address",
        ),
        "own-wallet": (
            {"recipient": HOT_WALLET.lower()},
            RejectionCode.DEPOSIT_ADDRESS_INVALID,
            "own wallets",
        ),
        "forbidden": (
            {"recipient": forbidden, "forbidden_recipients": [forbidden.lower()]},
            RejectionCode.DEPOSIT_ADDRESS_INVALID,
            "not allowed as a recipient",
        ),
        "too-precise": (
            {"asset": "USDC", "amount": Decimal("1.0000001")},
            RejectionCode.AMOUNT_INVALID,
            "6 fractional",
        ),
        "negative": ({"amount": Decimal("-1")}, RejectionCode.AMOUNT_INVALID, "not positive"),
        "over-cap": (
            {"asset": "USDC", "amount": Decimal("10000.01")},
            RejectionCode.OVER_ORDER_CAP,
            "per-order cap",
        ),
        "unknown-chain": ({"chain": "solana"}, RejectionCode.UNSUPPORTED_CHAIN, "solana"),
        "wrong-chain-id": ({"chain": "wrong"}, RejectionCode.CHAIN_ID_MISMATCH, "eth_chainId"),
    }
    start_nonce = chain.nonce()
    outcomes: dict[str, PaymentOutcome] = {}
    # Reject mode: in the default wait mode the short payment would wait for a top-up instead
    # (tests/workflows/test_payment_pool_funds.py).
    config = chain.config(on_insufficient_funds="reject")
    async with payment_worker(dev_client, task_queue, {CHAIN: config, "wrong": wrong}):

        async def run(name: str, overrides: dict[str, object]) -> None:
            request = PaymentRequest.model_validate(
                {
                    "payment_id": f"rej-{name}-{chain.chain_id}",
                    "chain": CHAIN,
                    "asset": "ETH",
                    "recipient": good,
                    "amount": Decimal("1"),
                    **overrides,
                }
            )
            outcomes[name] = await (await start_payment(dev_client, task_queue, request)).result()

        await asyncio.gather(*(run(name, case[0]) for name, case in cases.items()))
        # Insufficient balance last: the wallet is drained to 0.5 ETH, then asked for 1 ETH.
        chain.rpc("anvil_setBalance", [HOT_WALLET, hex(5 * 10**17)])
        await run("insufficient", {})
    cases["insufficient"] = ({}, RejectionCode.INSUFFICIENT_BALANCE, "insufficient balance")

    for name, (_, code, needle) in cases.items():
        outcome = outcomes[name]
        assert outcome.status is PaymentStatus.REJECTED, (name, outcome)
        assert outcome.rejection_code is code, (name, outcome)
        assert needle in (outcome.reason or ""), (name, outcome.reason)
        assert not outcome.nonce_reserved and outcome.nonce is None and outcome.tx_hashes == []
        print(f"\n{name}: {code.value}: {outcome.reason}", end="")
    assert chain.nonce() == start_nonce
    # No nonce was ever asked for: the hot-wallet entity was not even created.
    with pytest.raises(RPCError) as missing:
        await dev_client.get_workflow_handle(wallet_id(chain)).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND
    await assert_no_key_in_histories(
        dev_client, [payment_workflow_id(f"rej-{name}-{chain.chain_id}") for name in cases]
    )


async def test_daily_cap_rejects_without_taking_a_nonce(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    config = chain.config()
    assets = dict(config.assets)
    assets["USDC"] = assets["USDC"].model_copy(update={"daily_cap": Decimal("100")})
    config = config.model_copy(update={"assets": assets})
    start_nonce = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):

        async def pay(name: str, amount: str) -> PaymentOutcome:
            request = PaymentRequest(
                payment_id=f"cap-{name}-{chain.chain_id}",
                chain=CHAIN,
                asset="USDC",
                recipient=Account.create().address,
                amount=Decimal(amount),
            )
            return await (await start_payment(dev_client, task_queue, request)).result()

        first = await pay("first", "60")
        second = await pay("second", "50")
    assert first.status is PaymentStatus.CONFIRMED
    assert second.status is PaymentStatus.REJECTED
    assert second.rejection_code is RejectionCode.DAILY_CAP
    assert "daily cap" in (second.reason or "")
    assert not second.nonce_reserved and second.nonce is None
    assert chain.nonce() == start_nonce + 1
