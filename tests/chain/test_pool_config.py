"""Pools and nodes in the configuration: the one-wallet, one-URL form still works (and is what a
one-wallet config dumps to), per-chain confirmation defaults, several keys in the signer, a pool
wallet without a key refuses the chain, the wallet choice, and the broadcast verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from pydantic import SecretStr, ValidationError
from temporalio.exceptions import ApplicationError

from activities.chain import ChainActivities
from offramp.chain.failover import NodeAnswer
from offramp.chain.models import BroadcastInput, BroadcastKind, TxFields
from offramp.chain.pool import WalletFunds, choose_wallet
from offramp.chain.rpc import ChainClient, ChainRuntime, make_web3
from offramp.chain.signer import Signer
from offramp.config import ChainConfig, ConfigError, EngineSettings, load_settings
from offramp.devstack.chain import HOT_WALLET, HOT_WALLET_KEY, POOL_KEYS, POOL_WALLETS, LocalChain
from tests.chain.rpc_nodes import PATH_SECRET, QUERY_SECRET, assert_no_secret, secret_url

SECRET_URL = secret_url(8545)


def legacy(**changes: Any) -> dict[str, Any]:
    """A chain config as written before pools: `rpc_url` and `hot_wallet`."""
    return {
        "chain_id": 31337,
        "rpc_url": SECRET_URL,
        "hot_wallet": HOT_WALLET,
        "max_fee_per_gas_cap_wei": 10**12,
        "assets": {"ETH": {"symbol": "ETH", "decimals": 18, "per_order_cap": 1, "daily_cap": 9}},
        **changes,
    }


def test_the_one_wallet_one_url_form_is_a_pool_of_one_and_dumps_the_same() -> None:
    config = ChainConfig.model_validate(legacy())
    assert config.hot_wallets == [HOT_WALLET] and config.hot_wallet == HOT_WALLET
    assert config.rpc_urls == [SECRET_URL] and config.rpc_url == SECRET_URL
    dumped = config.model_dump(mode="json")
    assert dumped["rpc_url"] == SECRET_URL and dumped["hot_wallet"] == HOT_WALLET
    assert "rpc_urls" not in dumped and "hot_wallets" not in dumped
    assert ChainConfig.model_validate(dumped) == config
    assert_no_secret(repr(config) + str(config), "the config's repr")


def test_a_pool_and_several_nodes_dump_as_lists() -> None:
    plural = {k: v for k, v in legacy().items() if k not in ("rpc_url", "hot_wallet")}
    config = ChainConfig.model_validate(
        {
            **plural,
            "rpc_urls": [SECRET_URL, "http://b"],
            "hot_wallets": [w.lower() for w in POOL_WALLETS[:3]],
            "rpc_labels": ["infura", "own node"],
        }
    )
    assert config.hot_wallets == list(POOL_WALLETS[:3])  # checksummed
    assert config.rpc_label(1) == "own node"
    dumped = config.model_dump(mode="json")
    assert dumped["hot_wallets"] == list(POOL_WALLETS[:3]) and len(dumped["rpc_urls"]) == 2


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"rpc_urls": [SECRET_URL]}, "give rpc_url or rpc_urls, not both"),
        ({"hot_wallets": [HOT_WALLET]}, "give hot_wallet or hot_wallets, not both"),
        ({"rpc_labels": ["a", "b"]}, "rpc_labels has 2 names for 1 rpc_urls"),
        ({"rpc_url": f"wss://h/v3/{PATH_SECRET}"}, "rpc_urls[0] is not an http(s) URL"),
        ({"finality": "latest"}, "finality"),
        ({"confirmations": 0}, "confirmations"),
    ],
)
def test_bad_chain_settings_are_named_without_the_url(
    changes: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setenv("OFFRAMP_CHAINS", json.dumps({"anvil": legacy(**changes)}))
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert problem in str(raised.value)
    assert_no_secret(str(raised.value), "the configuration error")


def test_duplicate_pool_wallets_or_urls_are_refused() -> None:
    base = {k: v for k, v in legacy().items() if k != "hot_wallet"}
    with pytest.raises(ValidationError, match="duplicate"):
        ChainConfig.model_validate({**base, "hot_wallets": [HOT_WALLET, HOT_WALLET.lower()]})


@pytest.mark.parametrize(
    ("chain_id", "depth"), [(1, 12), (8453, 10), (10, 10), (42161, 20), (137, 64), (31337, 1)]
)
def test_confirmations_default_per_known_chain(chain_id: int, depth: int) -> None:
    config = ChainConfig.model_validate(legacy(chain_id=chain_id))
    assert config.confirmations == depth and config.finality == "depth"
    assert ChainConfig.model_validate(legacy(chain_id=7_777_777)).confirmations == 12
    assert ChainConfig.model_validate(legacy(chain_id=1, confirmations=3)).confirmations == 3


def test_the_signer_holds_every_configured_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    keystore = Account.encrypt(bytes.fromhex(POOL_KEYS[3][2:]), "pw", kdf="pbkdf2", iterations=2)
    (tmp_path / "k.json").write_text(json.dumps(keystore))
    (tmp_path / "pw").write_text("pw\n")
    monkeypatch.setenv("OFFRAMP_HOT_WALLET_PRIVATE_KEY", HOT_WALLET_KEY)
    monkeypatch.setenv("OFFRAMP_HOT_WALLET_PRIVATE_KEYS", f" {POOL_KEYS[1]}, {POOL_KEYS[2]} ,")
    monkeypatch.setenv("OFFRAMP_HOT_WALLET_KEYSTORE_FILES", str(tmp_path / "k.json"))
    monkeypatch.setenv("OFFRAMP_HOT_WALLET_KEYSTORE_PASSWORD_FILE", str(tmp_path / "pw"))
    signer = Signer.from_settings(load_settings())
    assert signer is not None
    assert signer.addresses == list(POOL_WALLETS[:4]) and signer.address == HOT_WALLET
    fields = TxFields(
        chain_id=31337,
        nonce=0,
        to=HOT_WALLET,
        value=1,
        gas=21_000,
        max_fee_per_gas=2,
        max_priority_fee_per_gas=1,
    )
    for wallet in POOL_WALLETS[:4]:
        raw = signer.sign(fields, wallet).raw_transaction
        assert Account.recover_transaction(raw) == wallet
    stranger = Account.create()
    with pytest.raises(ValueError, match="no key for") as raised:
        signer.sign(fields, stranger.address)
    assert stranger.key.hex() not in str(raised.value)
    text = repr(signer) + str(signer)
    assert not any(key[2:] in text for key in POOL_KEYS)


async def test_a_pool_wallet_without_a_key_refuses_the_chain(
    local_chain: LocalChain, clean_env: None
) -> None:
    config = local_chain.config(pool_size=3)
    settings = EngineSettings(
        chains={"anvil": config},
        hot_wallet_private_key=SecretStr(HOT_WALLET_KEY),
        hot_wallet_private_keys=SecretStr(POOL_KEYS[2]),  # the second wallet's key is missing
    )
    runtime = await ChainRuntime.create(settings)
    try:
        refusal = await runtime.served("anvil")
        assert isinstance(refusal, str)
        assert "'anvil'" in refusal and f"no key for hot wallet {POOL_WALLETS[1]}" in refusal
        assert not any(key[2:] in refusal for key in POOL_KEYS)
    finally:
        await runtime.aclose()


def funds(address: str, native: int, asset: int) -> WalletFunds:
    return WalletFunds(address, native, asset)


def test_the_wallet_choice_prefers_headroom_and_spreads_ties() -> None:
    a, b, c = POOL_WALLETS[:3]
    rich, poor = funds(a, 10**18, 1_000), funds(b, 10**18, 100)
    # Far more headroom wins outright; a wallet that cannot pay is never chosen.
    for i in range(20):
        pool = [rich, poor, funds(c, 10**18, 5)]
        chosen = choose_wallet(f"p{i}", pool, amount=50, native=False, gas_cost_wei=10)
        assert chosen == rich
    # Comparable headroom: the payment id spreads them, deterministically.
    even = [funds(a, 10**18, 1_000), funds(b, 10**18, 900), funds(c, 10**18, 800)]
    picks = [
        choose_wallet(f"p{i}", even, amount=50, native=False, gas_cost_wei=1) for i in range(60)
    ]
    assert {p.address for p in picks if p} == {a, b, c}
    assert picks == [
        choose_wallet(f"p{i}", even, amount=50, native=False, gas_cost_wei=1) for i in range(60)
    ]
    # A token payment also needs native coin for gas; a native one needs amount + gas.
    no_gas = [funds(a, 5, 10**9), funds(b, 10**6, 60)]
    assert choose_wallet("x", no_gas, amount=50, native=False, gas_cost_wei=100) == no_gas[1]
    native = [funds(a, 149, 149), funds(b, 150, 150)]
    assert choose_wallet("x", native, amount=100, native=True, gas_cost_wei=50) == native[1]
    assert choose_wallet("x", native[:1], amount=100, native=True, gas_cost_wei=50) is None


def answer(label: str, result: str | None = None, error: str | None = None) -> NodeAnswer:
    if result is None and error is None:
        return NodeAnswer(label, None, "timed out")
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1}
    body.update({"result": result} if result else {"error": {"code": -32000, "message": error}})
    return NodeAnswer(label, body)  # type: ignore[arg-type]


def test_the_broadcast_verdict_over_several_nodes(local_chain: LocalChain) -> None:
    config = local_chain.config().model_copy(update={"rpc_urls": [SECRET_URL]})
    client = ChainClient("anvil", config, make_web3(config))
    verdict = ChainActivities._broadcast_verdict
    sent = answer("rpc #1", result="0x" + "ab" * 32)
    low = answer("rpc #2", error="nonce too low")
    known = answer("rpc #3", error="already known")
    down = answer("rpc #4")
    assert verdict(client, [low, sent, down])[0] is BroadcastKind.SENT
    assert verdict(client, [down, known, low])[0] is BroadcastKind.ALREADY_KNOWN
    assert verdict(client, [down, low])[0] is BroadcastKind.NONCE_TOO_LOW
    odd = answer("rpc #1", error=f"rejected by {SECRET_URL} because {QUERY_SECRET}")
    with pytest.raises(ApplicationError, match="refused") as refused:
        verdict(client, [odd, down])
    assert_no_secret(refused.value.message, "a refusal")
    with pytest.raises(ApplicationError, match="rpc #4: timed out") as nothing:
        verdict(client, [down])
    assert nothing.value.type == "ChainUnavailable" and PATH_SECRET not in nothing.value.message


def test_broadcast_input_without_sender_still_decodes() -> None:
    """Histories from before pools: no `sender` (the chain's first wallet signs)."""
    fields = TxFields(
        chain_id=1,
        nonce=0,
        to=HOT_WALLET,
        value=0,
        gas=21_000,
        max_fee_per_gas=1,
        max_priority_fee_per_gas=0,
    )
    old = BroadcastInput.model_validate({"chain": "anvil", "fields": fields.model_dump()})
    assert old.sender is None


def test_every_pool_wallet_is_one_of_our_own(local_chain: LocalChain) -> None:
    """Never a deposit address or a recipient: the order checks and the preflight both know the
    whole pool."""
    from activities.orders import OrderActivities

    config = local_chain.config(pool_size=3)
    own = OrderActivities({"anvil": config})._own_wallets
    assert own == {w.lower() for w in POOL_WALLETS[:3]}
    settings = EngineSettings(chains={"anvil": config})
    runtime = ChainRuntime(settings=settings, signer=None)
    assert ChainActivities(runtime).all_hot_wallets() == set(POOL_WALLETS[:3])
