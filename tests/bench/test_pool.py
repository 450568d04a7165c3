"""The pool helper: anvil's published accounts, the first being the stack's hot wallet, and a
chain configuration the engine accepts for one wallet (and for several once pools exist)."""

from __future__ import annotations

import pytest

from offramp.bench import pool
from offramp.config import ChainConfig
from offramp.devstack.chain import HOT_WALLET, HOT_WALLET_KEY, LocalChain

CHAIN = LocalChain(
    rpc_url="http://127.0.0.1:1", chain_id=31337, token_address=HOT_WALLET
)  # the token address only needs to be an address here


def test_pool_wallets_are_distinct_anvil_accounts_starting_with_the_hot_wallet() -> None:
    wallets = pool.pool_wallets(8)
    assert wallets[0].address == HOT_WALLET and wallets[0].key == HOT_WALLET_KEY
    assert len({w.address for w in wallets}) == 8
    with pytest.raises(ValueError, match="pool size"):
        pool.pool_wallets(9)


def test_one_wallet_config_is_accepted_by_the_engine() -> None:
    config = ChainConfig.model_validate(pool.chain_config(CHAIN, pool.pool_wallets(1)))
    wallets = getattr(config, "hot_wallets", None) or [config.hot_wallet]
    assert list(wallets) == [HOT_WALLET]
    env = pool.signer_env(pool.pool_wallets(1))
    assert HOT_WALLET_KEY in next(iter(env.values()))


def test_larger_pools_follow_the_interface_or_refuse_clearly() -> None:
    wallets = pool.pool_wallets(4)
    if pool.pools_supported():
        config = pool.chain_config(CHAIN, wallets)
        assert config["hot_wallets"] == [w.address for w in wallets]
        keys = pool.signer_env(wallets)["OFFRAMP_HOT_WALLET_PRIVATE_KEYS"].split(",")
        assert keys == [w.key for w in wallets]
    else:
        with pytest.raises(RuntimeError, match="hot_wallets"):
            pool.chain_config(CHAIN, wallets)
