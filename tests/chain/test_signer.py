"""The signer: deterministic signatures (a retry: same bytes and hash), keys never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from pydantic import SecretStr

from offramp.chain.models import TxFields
from offramp.chain.signer import Signer
from offramp.config import ConfigError, EngineSettings
from offramp.devstack.chain import HOT_WALLET, HOT_WALLET_KEY

FIELDS = TxFields(
    chain_id=31337,
    nonce=7,
    to="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    value=10**18,
    data="0x",
    gas=21_000,
    max_fee_per_gas=3 * 10**9,
    max_priority_fee_per_gas=10**9,
)
BARE = HOT_WALLET_KEY.removeprefix("0x")


def test_signing_is_deterministic_and_hash_is_keccak_of_raw() -> None:
    signer = Signer.from_private_key(HOT_WALLET_KEY)
    first, second = signer.sign(FIELDS), signer.sign(FIELDS)
    assert first == second
    assert keccak(first.raw_transaction).hex() == first.tx_hash.removeprefix("0x")
    bumped = signer.sign(FIELDS.model_copy(update={"max_fee_per_gas": 4 * 10**9}))
    assert bumped.tx_hash != first.tx_hash


def test_key_is_never_shown() -> None:
    signer = Signer.from_private_key(HOT_WALLET_KEY)
    assert signer.address == HOT_WALLET
    for text in (repr(signer), str(signer), f"{signer}"):
        assert BARE not in text.lower()
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)
    with pytest.raises(ConfigError) as err:
        Signer.from_private_key(BARE[:-2] + "zz")
    assert BARE[:20] not in str(err.value) and err.value.__cause__ is None


def test_keystore_with_password_file(tmp_path: Path) -> None:
    keystore = Account.encrypt(bytes.fromhex(BARE), "s3cret", kdf="pbkdf2", iterations=2)
    (tmp_path / "key.json").write_text(__import__("json").dumps(keystore))
    (tmp_path / "password").write_text("s3cret\n")
    settings = EngineSettings(
        hot_wallet_keystore_file=tmp_path / "key.json",
        hot_wallet_keystore_password_file=tmp_path / "password",
    )
    signer = Signer.from_settings(settings)
    assert signer is not None and signer.address == HOT_WALLET
    (tmp_path / "password").write_text("wrong\n")
    with pytest.raises(ConfigError, match="cannot decrypt") as err:
        Signer.from_settings(settings)
    assert "s3cret" not in str(err.value)


def test_private_key_from_settings() -> None:
    settings = EngineSettings(hot_wallet_private_key=SecretStr(HOT_WALLET_KEY))
    signer = Signer.from_settings(settings)
    assert signer is not None and signer.address == HOT_WALLET
    assert BARE not in repr(settings)
    assert Signer.from_settings(EngineSettings()) is None
