"""At start the worker checks each chain's eth_chainId (and that it can sign for its hot wallet);
a chain that does not match is refused with a reason naming it."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from pydantic import SecretStr

from offramp.chain.models import PaymentOutcome, PaymentRequest
from offramp.chain.rpc import ChainClient, ChainRuntime
from offramp.config import EngineSettings
from offramp.converter import DATA_CONVERTER
from offramp.devstack.chain import DEPLOYER_KEY, HOT_WALLET_KEY, LocalChain


async def test_mismatched_chain_id_is_refused(
    local_chain: LocalChain, caplog: pytest.LogCaptureFixture, clean_env: None
) -> None:
    good = local_chain.config()
    settings = EngineSettings(
        chains={
            "anvil": good,
            "mainnet": good.model_copy(update={"chain_id": 1}),
        },
        hot_wallet_private_key=SecretStr(HOT_WALLET_KEY),
    )
    with caplog.at_level(logging.ERROR, logger="offramp.chain"):
        runtime = await ChainRuntime.create(settings)
    try:
        assert isinstance(await runtime.served("anvil"), ChainClient)
        refusal = await runtime.served("mainnet")
        assert isinstance(refusal, str)
        assert "'mainnet'" in refusal and "eth_chainId is 31337" in refusal and "says 1" in refusal
        assert "'mainnet'" in caplog.text
        assert await runtime.served("nowhere") == "chain 'nowhere' is not configured"
    finally:
        await runtime.aclose()


async def test_chain_refused_when_the_key_is_not_the_hot_wallets(
    local_chain: LocalChain, clean_env: None
) -> None:
    settings = EngineSettings(
        chains={"anvil": local_chain.config()}, hot_wallet_private_key=SecretStr(DEPLOYER_KEY)
    )
    runtime = await ChainRuntime.create(settings)
    try:
        refusal = await runtime.served("anvil")
        assert isinstance(refusal, str) and "no key for hot wallet" in refusal
        assert DEPLOYER_KEY.removeprefix("0x") not in refusal
    finally:
        await runtime.aclose()


def test_payment_models_round_trip_exactly() -> None:
    request = PaymentRequest(
        payment_id="o-1",
        chain="anvil",
        asset="ETH",
        recipient="0x" + "1" * 40,
        amount=Decimal("1.10"),
    )
    outcome = PaymentOutcome(
        payment_id="o-1",
        status="confirmed",
        chain="anvil",
        asset="ETH",
        recipient="0x" + "1" * 40,
        amount=Decimal("1.10"),
        amount_base_units=11 * 10**17 * 10**20,  # beyond 64 bits
    )
    converter = DATA_CONVERTER.payload_converter
    for value in (request, outcome):
        (payload,) = converter.to_payloads([value])
        (back,) = converter.from_payloads([payload], [type(value)])
        assert back == value
    assert str(request.amount) == "1.10"
