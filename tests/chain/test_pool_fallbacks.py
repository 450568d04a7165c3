"""No silent fallback to the pool's first wallet (real anvil; the sender lookup against a real
dev server): a nonce read by an entity whose wallet left the pool, and a sender-less broadcast
(scheduled before pools) whose Payment names no wallet, are refused (retryable, naming the
entity, never a URL); a sender-less broadcast signs with the wallet its Payment reserved with
even when the pool was reordered. Configuration errors never print an RPC URL."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.chain import ChainActivities
from offramp.chain.models import (
    BroadcastInput,
    BroadcastKind,
    TxFields,
    hot_wallet_workflow_id,
)
from offramp.chain.pool import WalletFunds, best_funded
from offramp.chain.rpc import ChainRuntime
from offramp.config import ChainConfig, ConfigError, EngineSettings, load_settings
from offramp.devstack.chain import POOL_WALLETS
from tests.chain.payment_stand_in import PaymentStandIn
from tests.chain.rpc_nodes import PATH_SECRET, assert_no_secret, secret_url
from tests.chain.support import PayChain, pay_chain, payment_settings


async def test_a_bare_nonce_read_from_an_entity_outside_the_pool_is_refused(
    tmp_path: Path, clean_env: None
) -> None:
    a, b = POOL_WALLETS[:2]
    with pay_chain(tmp_path) as chain:
        config = chain.config(hot_wallets=[b])  # a was removed from the pool
        runtime = await ChainRuntime.create(payment_settings("tq", {"anvil": config}, 2))
        try:
            env = ActivityEnvironment()
            removed = hot_wallet_workflow_id(chain.chain_id, a)
            env.info = replace(env.info, workflow_id=removed)
            with pytest.raises(ApplicationError) as raised:
                await env.run(ChainActivities(runtime).read_wallet_nonces, "anvil")
            assert raised.value.type == "WalletNotInPool" and not raised.value.non_retryable
            assert removed in raised.value.message and "not in this chain's" in raised.value.message
            kept = hot_wallet_workflow_id(chain.chain_id, b)
            env.info = replace(env.info, workflow_id=kept)
            chain.rpc("anvil_setNonce", [b, hex(4)])
            nonces = await env.run(ChainActivities(runtime).read_wallet_nonces, "anvil")
            assert nonces.latest == 4  # b's own nonce, asked by b's entity
        finally:
            await runtime.aclose()


def fields(chain_id: int, nonce: int) -> TxFields:
    return TxFields(
        chain_id=chain_id,
        nonce=nonce,
        to=Account.create().address,
        value=1,
        data="0x",
        gas=21_000,
        max_fee_per_gas=10**10,
        max_priority_fee_per_gas=10**9,
    )


async def test_a_senderless_broadcast_signs_with_the_wallet_its_payment_reserved(
    dev_client: Client, task_queue: str, tmp_path: Path, clean_env: None
) -> None:
    a, b = POOL_WALLETS[:2]
    with pay_chain(tmp_path) as chain:
        config = chain.config(hot_wallets=[a, b])  # b paid before pools; now a is first
        runtime = await ChainRuntime.create(payment_settings(task_queue, {"anvil": config}, 2))
        try:
            async with Worker(dev_client, task_queue=task_queue, workflows=[PaymentStandIn]):
                await senderless_broadcasts(dev_client, task_queue, chain, ChainActivities(runtime))
        finally:
            await runtime.aclose()


async def senderless_broadcasts(
    client: Client, task_queue: str, chain: PayChain, activities: ChainActivities
) -> None:
    a, b = POOL_WALLETS[:2]
    reserved_b = await client.start_workflow(
        PaymentStandIn.run, b, id=f"stand-in-{uuid.uuid4()}", task_queue=task_queue
    )
    no_wallet = await client.start_workflow(
        PaymentStandIn.run, None, id=f"stand-in-{uuid.uuid4()}", task_queue=task_queue
    )
    try:
        env = ActivityEnvironment(client=client)
        env.info = replace(env.info, workflow_id=reserved_b.id)
        nonce_b = chain.nonce(wallet=b)
        old_input = BroadcastInput(chain="anvil", fields=fields(chain.chain_id, nonce_b))
        result = await env.run(activities.sign_and_broadcast, old_input)
        assert result.kind is BroadcastKind.SENT
        tx = chain.w3.eth.get_transaction(result.tx_hash)  # type: ignore[arg-type]
        chain.w3.eth.wait_for_transaction_receipt(result.tx_hash, timeout=60)  # type: ignore[arg-type]
        assert tx["from"] == b and chain.nonce(wallet=b) == nonce_b + 1

        nonce_a = chain.nonce(wallet=a)
        for workflow_id in (no_wallet.id, f"gone-{uuid.uuid4()}"):
            env.info = replace(env.info, workflow_id=workflow_id)
            inp = BroadcastInput(chain="anvil", fields=fields(chain.chain_id, nonce_a))
            with pytest.raises(ApplicationError) as raised:
                await env.run(activities.sign_and_broadcast, inp)
            assert raised.value.type == "SenderUnknown" and not raised.value.non_retryable
            assert "a person must check" in raised.value.message
            assert_no_secret(raised.value.message, "the refusal")
        assert chain.nonce(wallet=a) == nonce_a  # nothing signed with the first wallet
    finally:
        for handle in (reserved_b, no_wallet):
            await handle.terminate()


def test_the_wallet_to_wait_on_is_the_best_funded_whatever_the_order() -> None:
    pool = [
        WalletFunds(POOL_WALLETS[0], 10, 5),
        WalletFunds(POOL_WALLETS[1], 10, 7),
        WalletFunds(POOL_WALLETS[2], 99, 7),
    ]
    assert best_funded(pool).address == POOL_WALLETS[2]
    assert best_funded(list(reversed(pool))).address == POOL_WALLETS[2]
    twins = [WalletFunds(POOL_WALLETS[3], 1, 1), WalletFunds(POOL_WALLETS[4], 1, 1)]
    assert best_funded(twins) == best_funded(list(reversed(twins)))


def chain_dict(**changes: Any) -> dict[str, Any]:
    return {
        "chain_id": 31337,
        "rpc_urls": [secret_url(8545)],
        "hot_wallets": [POOL_WALLETS[0]],
        "max_fee_per_gas_cap_wei": 10**12,
        "assets": {"ETH": {"symbol": "ETH", "decimals": 18, "per_order_cap": 1, "daily_cap": 9}},
        **changes,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"rpc_urls": [secret_url(8545), f"wss://h/v3/{PATH_SECRET}"]},
        {"rpc_urls": [secret_url(8545), secret_url(8545)]},
        {"rpc_urls": secret_url(8545)},  # not a list
        {"rpc_labels": ["only one", "two"]},
        {"max_fee_per_gas_cap_wei": "lots"},
        {"bogus": 1},
        {"rpc_url": secret_url(8545)},  # both forms
    ],
)
def test_no_config_error_path_prints_an_rpc_url(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    data = chain_dict(**changes)
    texts = []
    with pytest.raises(ValidationError) as direct:
        ChainConfig.model_validate(data)
    texts += [str(direct.value), repr(direct.value)]
    with pytest.raises(ValidationError) as settings:
        EngineSettings(chains={"anvil": data})
    texts += [str(settings.value), repr(settings.value)]
    monkeypatch.setenv("OFFRAMP_CHAINS", json.dumps({"anvil": data}))
    with pytest.raises(ConfigError) as loaded:
        load_settings()
    texts.append(str(loaded.value))
    for text in texts:
        assert_no_secret(text, "a configuration error")


def test_a_valid_config_never_prints_its_urls() -> None:
    config = ChainConfig.model_validate(chain_dict(rpc_urls=[secret_url(8545), secret_url(9)]))
    settings = EngineSettings(chains={"anvil": config})
    assert_no_secret(repr(config) + str(config) + repr(settings) + str(settings), "a repr")
