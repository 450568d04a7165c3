"""The hot wallet's signer: the only place a private key lives, inside the worker process.

The key comes from `OFFRAMP_HOT_WALLET_PRIVATE_KEY` or from an eth-account encrypted keystore
(`OFFRAMP_HOT_WALLET_KEYSTORE_FILE` + `OFFRAMP_HOT_WALLET_KEYSTORE_PASSWORD_FILE`). It never leaves
this object: not in workflow inputs, history, logs, reprs or error messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from offramp.chain.models import TxFields
from offramp.config import ConfigError, EngineSettings


@dataclass(frozen=True)
class SignedTx:
    raw_transaction: bytes
    tx_hash: str


class Signer:
    """Signs EIP-1559 transactions for one address. Signing is deterministic (RFC 6979)."""

    __slots__ = ("_account", "address")

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self.address: str = to_checksum_address(account.address)

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Signer cannot be pickled")

    @classmethod
    def from_private_key(cls, key: str) -> Signer:
        try:
            return cls(Account.from_key(key.strip()))
        except Exception:
            # Never chain the original exception: its message or locals may include the key.
            raise ConfigError("the hot wallet private key is not a valid secp256k1 key") from None

    @classmethod
    def from_keystore(cls, keystore: str, password: str) -> Signer:
        try:
            key = Account.decrypt(json.loads(keystore), password)
        except Exception:
            raise ConfigError(
                "cannot decrypt the hot wallet keystore (wrong password or not a keystore)"
            ) from None
        return cls(Account.from_key(key))

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Signer | None:
        if settings.hot_wallet_private_key is not None:
            return cls.from_private_key(settings.hot_wallet_private_key.get_secret_value())
        if settings.hot_wallet_keystore_file is not None:
            password_file = settings.hot_wallet_keystore_password_file
            assert password_file is not None  # enforced by EngineSettings
            try:
                keystore = settings.hot_wallet_keystore_file.read_text()
                password = password_file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read the hot wallet keystore: {exc.strerror}") from None
            return cls.from_keystore(keystore, password)
        return None

    def sign(self, fields: TxFields) -> SignedTx:
        tx: Any = {
            "type": 2,
            "chainId": fields.chain_id,
            "nonce": fields.nonce,
            "to": to_checksum_address(fields.to),
            "value": fields.value,
            "data": fields.data,
            "gas": fields.gas,
            "maxFeePerGas": fields.max_fee_per_gas,
            "maxPriorityFeePerGas": fields.max_priority_fee_per_gas,
            "accessList": [],
        }
        try:
            signed = self._account.sign_transaction(tx)
        except Exception as exc:
            raise ValueError(f"cannot sign the transaction: {type(exc).__name__}") from None
        return SignedTx(bytes(signed.raw_transaction), signed.hash.to_0x_hex())
