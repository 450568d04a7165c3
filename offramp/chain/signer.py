"""The hot wallets' signer: the only place a private key lives, inside the worker process.

Keys come from `OFFRAMP_HOT_WALLET_PRIVATE_KEY`, `OFFRAMP_HOT_WALLET_PRIVATE_KEYS`
(comma-separated) and eth-account encrypted keystores (`OFFRAMP_HOT_WALLET_KEYSTORE_FILE` and/or
`OFFRAMP_HOT_WALLET_KEYSTORE_FILES`, comma-separated, one password in
`OFFRAMP_HOT_WALLET_KEYSTORE_PASSWORD_FILE`).
A key never leaves this object: not in workflow inputs, history, logs, reprs or error messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
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
    """Signs EIP-1559 transactions for the hot wallets it holds keys for. Signing is
    deterministic (RFC 6979). `address` is the first key's address (the one-wallet setup)."""

    __slots__ = ("_accounts", "address")

    def __init__(self, *accounts: LocalAccount) -> None:
        if not accounts:
            raise ValueError("a Signer needs at least one key")
        self._accounts: dict[str, LocalAccount] = {}
        for account in accounts:
            self._accounts.setdefault(account.address.lower(), account)
        self.address: str = to_checksum_address(accounts[0].address)

    def __repr__(self) -> str:
        return f"Signer(addresses={self.addresses})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Signer cannot be pickled")

    @property
    def addresses(self) -> list[str]:
        return [to_checksum_address(a.address) for a in self._accounts.values()]

    def holds(self, address: str) -> bool:
        return address.lower() in self._accounts

    @staticmethod
    def _account(key: str) -> LocalAccount:
        try:
            account: LocalAccount = Account.from_key(key.strip())
        except Exception:
            # Never chain the original exception: its message or locals may include the key.
            raise ConfigError("a hot wallet private key is not a valid secp256k1 key") from None
        return account

    @classmethod
    def from_private_key(cls, key: str) -> Signer:
        return cls(cls._account(key))

    @staticmethod
    def _decrypt(keystore: str, password: str) -> LocalAccount:
        try:
            key = Account.decrypt(json.loads(keystore), password)
        except Exception:
            raise ConfigError(
                "cannot decrypt a hot wallet keystore (wrong password or not a keystore)"
            ) from None
        account: LocalAccount = Account.from_key(key)
        return account

    @classmethod
    def from_keystore(cls, keystore: str, password: str) -> Signer:
        return cls(cls._decrypt(keystore, password))

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Signer | None:
        """Every key configured: OFFRAMP_HOT_WALLET_PRIVATE_KEY, OFFRAMP_HOT_WALLET_PRIVATE_KEYS
        (comma-separated) and the keystore file(s); None when there is none."""
        accounts: list[LocalAccount] = []
        if settings.hot_wallet_private_key is not None:
            accounts.append(cls._account(settings.hot_wallet_private_key.get_secret_value()))
        if settings.hot_wallet_private_keys is not None:
            keys = settings.hot_wallet_private_keys.get_secret_value().split(",")
            accounts.extend(cls._account(key) for key in keys if key.strip())
        keystores = [settings.hot_wallet_keystore_file] if settings.hot_wallet_keystore_file else []
        if settings.hot_wallet_keystore_files:
            keystores += [
                Path(p.strip()) for p in settings.hot_wallet_keystore_files.split(",") if p.strip()
            ]
        if keystores:
            password_file = settings.hot_wallet_keystore_password_file
            assert password_file is not None  # enforced by EngineSettings
            try:
                password = password_file.read_text().rstrip("\r\n")
                texts = [path.read_text() for path in keystores]
            except OSError as exc:
                raise ConfigError(f"cannot read a hot wallet keystore: {exc.strerror}") from None
            accounts.extend(cls._decrypt(text, password) for text in texts)
        return cls(*accounts) if accounts else None

    def sign(self, fields: TxFields, sender: str | None = None) -> SignedTx:
        """Sign with the key of `sender` (default: the first key's address)."""
        account = self._accounts.get((sender or self.address).lower())
        if account is None:
            raise ValueError(f"the signer holds no key for {sender}")
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
            signed = account.sign_transaction(tx)
        except Exception as exc:
            raise ValueError(f"cannot sign the transaction: {type(exc).__name__}") from None
        return SignedTx(bytes(signed.raw_transaction), signed.hash.to_0x_hex())
