"""Hot-wallet pools for the benchmark: the one place that knows the pool configuration interface.

The interface (issue 11, item 3; branch h/chain): `ChainConfig.hot_wallets: list[address]` (the
old single `hot_wallet` still accepted) and the signer keys comma-separated in
`OFFRAMP_HOT_WALLET_PRIVATE_KEYS`. Until that is merged, only a pool of one wallet can run
(`pools_supported()` says which), configured the old way.

Wallets are anvil's published development accounts 1..8 (account 0 deploys the token): their keys
are public, never real money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from offramp.config import ChainConfig
from offramp.devstack.chain import (
    HOT_WALLET,
    LOCAL_CHAIN_NAME,
    LocalChain,
    mint,
    token_contract,
    web3_for,
)

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
MAX_POOL = 8  # anvil starts 10 accounts; 0 is the deployer
POOL_FUNDING = 1_000_000 * 10**6  # USDC base units per wallet


@dataclass(frozen=True)
class Wallet:
    address: str
    key: str  # 0x hex; anvil's published development key


@cache
def anvil_account(index: int) -> Wallet:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return Wallet(account.address, "0x" + bytes(account.key).hex())


def pool_wallets(size: int) -> list[Wallet]:
    if not 1 <= size <= MAX_POOL:
        raise ValueError(f"pool size must be 1..{MAX_POOL}, got {size}")
    wallets = [anvil_account(i) for i in range(1, size + 1)]
    assert wallets[0].address == HOT_WALLET  # the stack's one hot wallet is the pool's first
    return wallets


def pools_supported() -> bool:
    """True once ChainConfig has `hot_wallets` (the pool interface of branch h/chain)."""
    return "hot_wallets" in ChainConfig.model_fields


def fund(chain: LocalChain, wallets: list[Wallet]) -> None:
    """Top up each wallet's test-token balance (their 10,000 ETH from anvil pay the gas)."""
    w3 = web3_for(chain.rpc_url)
    token = token_contract(w3, chain.token_address)
    for wallet in wallets:
        balance = int(token.functions.balanceOf(Web3.to_checksum_address(wallet.address)).call())
        if balance < POOL_FUNDING:
            mint(w3, chain.token_address, wallet.address, POOL_FUNDING - balance)


def chain_config(chain: LocalChain, wallets: list[Wallet], **overrides: Any) -> dict[str, Any]:
    """The chain's configuration (JSON-ready) paying from `wallets`."""
    config: dict[str, Any] = chain.config().model_dump(mode="json")
    config.update(overrides)
    if pools_supported():
        config.pop("hot_wallet", None)
        config["hot_wallets"] = [w.address for w in wallets]
    elif len(wallets) == 1:
        config["hot_wallet"] = wallets[0].address
    else:
        raise RuntimeError("wallet pools need ChainConfig.hot_wallets (branch h/chain)")
    ChainConfig.model_validate(config)  # fail here, not in the worker, if the shape is wrong
    return config


def signer_env(wallets: list[Wallet]) -> dict[str, str]:
    """The worker's signer keys for `wallets`."""
    if pools_supported():
        return {"OFFRAMP_HOT_WALLET_PRIVATE_KEYS": ",".join(w.key for w in wallets)}
    return {"OFFRAMP_HOT_WALLET_PRIVATE_KEY": wallets[0].key}


def write_chains_file(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({LOCAL_CHAIN_NAME: config}, indent=2) + "\n")
    return path
