"""The local chain fixture: test token deployed at its fixed address, hot wallet funded."""

from __future__ import annotations

from offramp.devstack.chain import (
    HOT_WALLET,
    HOT_WALLET_TOKEN_FUNDING,
    LOCAL_CHAIN_ID,
    LocalChain,
    expected_token_address,
    token_contract,
    web3_for,
)


def test_token_deployed_at_fixed_address(local_chain: LocalChain) -> None:
    w3 = web3_for(local_chain.rpc_url)
    assert local_chain.chain_id == LOCAL_CHAIN_ID
    assert local_chain.token_address == expected_token_address()
    token = token_contract(w3, local_chain.token_address)
    assert token.functions.decimals().call() == 6
    assert token.functions.symbol().call() == "USDC"


def test_hot_wallet_funded(local_chain: LocalChain) -> None:
    w3 = web3_for(local_chain.rpc_url)
    token = token_contract(w3, local_chain.token_address)
    assert token.functions.balanceOf(HOT_WALLET).call() >= HOT_WALLET_TOKEN_FUNDING
    assert w3.eth.get_balance(HOT_WALLET) > 10**18


def test_chain_config_matches_the_chain(local_chain: LocalChain) -> None:
    config = local_chain.config()
    assert config.chain_id == local_chain.chain_id
    assert config.assets["USDC"].address == local_chain.token_address
    assert config.assets["USDC"].decimals == 6
    assert config.assets["ETH"].is_native
