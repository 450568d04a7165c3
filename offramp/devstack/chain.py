"""A local EVM chain (anvil) with the test token deployed and the hot wallet funded.

Everything here is for the local stack and tests: the keys are anvil's published development keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.types import TxParams, Wei

from offramp.config import AssetConfig, ChainConfig
from offramp.devstack import binaries
from offramp.devstack.processes import ManagedProcess

LOCAL_CHAIN_NAME = "anvil"
LOCAL_CHAIN_ID = 31337
TOKEN_SYMBOL = "USDC"
TOKEN_DECIMALS = 6

# anvil's default development accounts (mnemonic "test test ... junk"); published, never real money.
DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # account 0
HOT_WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # account 1
DEPLOYER = Account.from_key(DEPLOYER_KEY).address
HOT_WALLET = Account.from_key(HOT_WALLET_KEY).address
# Accounts 1-9: the hot-wallet pool of the local stack, tests and benchmarks (account 1 first).
POOL_KEYS = (
    HOT_WALLET_KEY,
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
POOL_WALLETS = tuple(Account.from_key(key).address for key in POOL_KEYS)
# USDC orders of at least this wait for an operator's approval on the local stack.
LOCAL_REVIEW_THRESHOLD = Decimal("5000")
HOT_WALLET_TOKEN_FUNDING = 1_000_000 * 10**TOKEN_DECIMALS

ARTIFACT_PATH = Path(__file__).resolve().parents[1] / "chain" / "artifacts" / "TestUSDC.json"


@cache
def token_artifact() -> dict[str, Any]:
    artifact: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text())
    return artifact


def expected_token_address() -> ChecksumAddress:
    """The token is the deployer's first transaction on a fresh chain, so its address is fixed."""
    return Web3.to_checksum_address(
        Web3.keccak(
            bytes.fromhex("d694")
            + bytes.fromhex(DEPLOYER[2:])
            + bytes.fromhex("80")  # RLP of nonce 0
        )[12:]
    )


def anvil_process(
    port: int,
    log_path: Path,
    *,
    chain_id: int = LOCAL_CHAIN_ID,
    block_time: float | None = None,
    state_file: Path | None = None,
) -> ManagedProcess:
    argv = [
        str(binaries.anvil()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--accounts",
        "10",
    ]
    if block_time is not None:
        argv += ["--block-time", str(block_time)]
    if state_file is not None:
        # Load at start, dump on exit and every few seconds: the chain survives a stack restart.
        argv += ["--state", str(state_file), "--state-interval", "5"]
    return ManagedProcess("anvil", argv, log_path)


def web3_for(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))


def _send(w3: Web3, key: str, tx: TxParams) -> None:
    account = Account.from_key(key)
    tx = {**tx, "from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    tx.setdefault("chainId", w3.eth.chain_id)
    tx.setdefault("gas", w3.eth.estimate_gas(tx))
    tx.setdefault("maxFeePerGas", Wei(w3.eth.gas_price * 2 + 10**9))
    tx.setdefault("maxPriorityFeePerGas", Wei(10**9))
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    if receipt["status"] != 1:
        raise RuntimeError(f"setup transaction reverted: {tx_hash.to_0x_hex()}")


def ensure_token(w3: Web3) -> str:
    """Deploy the test token at its fixed address unless the (persisted) chain already has it."""
    address = expected_token_address()
    if w3.eth.get_code(address):
        return address
    if w3.eth.get_transaction_count(DEPLOYER) != 0:
        raise RuntimeError(
            f"token missing at {address} but the deployer {DEPLOYER} already used nonce 0"
        )
    _send(w3, DEPLOYER_KEY, {"data": token_artifact()["bytecode"], "value": Wei(0)})
    if not w3.eth.get_code(address):
        raise RuntimeError(f"token deploy did not land at {address}")
    return address


def token_contract(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=token_artifact()["abi"])


def mint(w3: Web3, token: str, to: str, amount_base_units: int) -> None:
    call = token_contract(w3, token).functions.mint(Web3.to_checksum_address(to), amount_base_units)
    tx: TxParams = {
        "to": Web3.to_checksum_address(token),
        "data": call._encode_transaction_data(),
        "value": Wei(0),
    }
    _send(w3, DEPLOYER_KEY, tx)


def fund_hot_wallet(
    w3: Web3, token: str, minimum: int = HOT_WALLET_TOKEN_FUNDING, wallet: str = HOT_WALLET
) -> None:
    """Top a hot wallet's token balance up to `minimum` (it has anvil's 10,000 ETH already)."""
    balance: int = token_contract(w3, token).functions.balanceOf(wallet).call()
    if balance < minimum:
        mint(w3, token, wallet, minimum - balance)


def pool_keys(size: int) -> list[str]:
    """The keys of a local pool of `size` hot wallets (anvil accounts 1..size)."""
    if not 1 <= size <= len(POOL_KEYS):
        raise ValueError(f"a local pool has 1 to {len(POOL_KEYS)} wallets, not {size}")
    return list(POOL_KEYS[:size])


def fund_pool(w3: Web3, token: str, size: int, minimum: int = HOT_WALLET_TOKEN_FUNDING) -> None:
    for wallet in POOL_WALLETS[:size]:
        fund_hot_wallet(w3, token, minimum, wallet)


@dataclass(frozen=True)
class LocalChain:
    """A running local chain, ready for payments."""

    rpc_url: str
    chain_id: int
    token_address: str

    def config(
        self,
        confirmations: int = 1,
        bump_after_seconds: float | None = None,
        pool_size: int = 1,
    ) -> ChainConfig:
        return local_chain_config(
            self.rpc_url,
            self.token_address,
            chain_id=self.chain_id,
            confirmations=confirmations,
            bump_after_seconds=bump_after_seconds,
            hot_wallets=list(POOL_WALLETS[:pool_size]),
        )

    def write_chains_file(
        self, path: Path, confirmations: int = 1, bump_after_seconds: float | None = None
    ) -> Path:
        """The `OFFRAMP_CHAINS_FILE` a worker reads to serve this chain. `bump_after_seconds`:
        None keeps the engine's default."""
        config = self.config(
            confirmations=confirmations, bump_after_seconds=bump_after_seconds
        ).model_dump(mode="json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({LOCAL_CHAIN_NAME: config}, indent=2) + "\n")
        return path


def prepare_chain(rpc_url: str, pool_size: int = 1) -> LocalChain:
    """Deploy the token (once) and fund the first `pool_size` pool wallets with it."""
    w3 = web3_for(rpc_url)
    token = ensure_token(w3)
    fund_pool(w3, token, pool_size)
    return LocalChain(rpc_url=rpc_url, chain_id=w3.eth.chain_id, token_address=token)


def local_chain_config(
    rpc_url: str,
    token_address: str,
    *,
    chain_id: int = LOCAL_CHAIN_ID,
    confirmations: int = 1,
    bump_after_seconds: float | None = None,
    hot_wallets: list[str] | None = None,
) -> ChainConfig:
    """`hot_wallets`: the pool (default: the one local hot wallet; fund others with fund_pool)."""
    sending: dict[str, Any] = {}
    if bump_after_seconds is not None:
        sending["bump_after_seconds"] = bump_after_seconds
    return ChainConfig(
        chain_id=chain_id,
        rpc_urls=[rpc_url],
        confirmations=confirmations,
        hot_wallets=hot_wallets or [HOT_WALLET],
        max_fee_per_gas_cap_wei=500 * 10**9,
        assets={
            "ETH": AssetConfig(
                symbol="ETH",
                decimals=18,
                per_order_cap=Decimal("10"),
                daily_cap=Decimal("1000"),
            ),
            TOKEN_SYMBOL: AssetConfig(
                symbol=TOKEN_SYMBOL,
                address=token_address,
                decimals=TOKEN_DECIMALS,
                per_order_cap=Decimal("10000"),
                daily_cap=Decimal("1000000"),
                review_threshold=LOCAL_REVIEW_THRESHOLD,
            ),
        },
        **sending,
    )
