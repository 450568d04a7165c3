"""AES-256-GCM payload codec: each payload becomes one encrypted payload naming its key.

The whole original payload (data and metadata, so its encoding stays secret too) is serialised and
sealed with a random 96-bit nonce; the key id is authenticated as associated data, so a payload
cannot be relabelled to another key. Payloads without our encoding (histories written before
encryption was turned on, or by a tool without the codec) pass through unchanged on decode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from offramp.codec.keys import KeyRing

ENCODING = b"binary/encrypted"
KEY_ID_KEY = "encryption-key-id"
_NONCE_BYTES = 12


class PayloadDecryptError(ValueError):
    """A payload that cannot be decrypted: unknown key id or tampered data (never the key)."""


class AesGcmCodec(PayloadCodec):
    def __init__(self, key_ring: KeyRing) -> None:
        self._key_ring = key_ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in key_ring.keys.items()}

    @property
    def active_key_id(self) -> str:
        return self._key_ring.active_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._key_ring.active_id
        cipher = self._ciphers[key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_KEY: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_KEY, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptError(
                f"payload encrypted with key id {key_id!r}, which is not in the key ring "
                f"(known: {', '.join(sorted(self._ciphers))})"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadDecryptError(
                f"payload under key id {key_id!r} does not authenticate (wrong key or altered)"
            ) from None
        return Payload.FromString(plain)
