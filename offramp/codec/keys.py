"""The payload key ring: AES-256 keys by id, the first one active.

`OFFRAMP_CODEC_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"` (or the same text in the file
named by `OFFRAMP_CODEC_KEYS_FILE`, commas or newlines between entries). The active key encrypts;
every listed key decrypts, so a key is rotated by putting a new one first and keeping the old ones
for as long as histories encrypted with them may be read (an order lives for days; a history is
kept for the namespace's retention). Errors name the variable, never a key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from offramp.config import ENV_PREFIX, ConfigError

KEY_BYTES = 32  # AES-256
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; `active_id` names the one that encrypts."""

    active_id: str
    keys: Mapping[str, bytes]

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_id]

    def secrets(self) -> list[str]:
        """The key material as it may be written in configuration (for log redaction)."""
        return [base64.b64encode(key).decode() for key in self.keys.values()]


def parse_key_ring(text: str, source: str) -> KeyRing:
    """`id:base64key` entries, first active; `source` (the variable) names a bad entry."""
    entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip() and not e.startswith("#")]
    if not entries:
        raise ConfigError(f"invalid configuration: {source}: no key listed")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        where = f"{source}: entry {position}"
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigError(
                f"invalid configuration: {where}: expected 'id:base64key' with an id of "
                "letters, digits, '_', '.', '-'"
            )
        if key_id in keys:
            raise ConfigError(f"invalid configuration: {where}: key id {key_id!r} listed twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"invalid configuration: {where} ({key_id}): not base64") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(
                f"invalid configuration: {where} ({key_id}): key is {len(key)} bytes, "
                f"AES-256 needs {KEY_BYTES}"
            )
        keys[key_id] = key
    return KeyRing(active_id=next(iter(keys)), keys=keys)


CODEC_KEYS_VAR = f"{ENV_PREFIX}CODEC_KEYS"
CODEC_KEYS_FILE_VAR = f"{ENV_PREFIX}CODEC_KEYS_FILE"


def load_key_ring(env: Mapping[str, str] | None = None) -> KeyRing | None:
    """The configured key ring (from `env`, default os.environ), or None when encryption is off
    (neither variable set)."""
    env = os.environ if env is None else env
    inline, file_name = env.get(CODEC_KEYS_VAR, "").strip(), env.get(CODEC_KEYS_FILE_VAR, "")
    if inline and file_name.strip():
        raise ConfigError(
            f"invalid configuration: set {CODEC_KEYS_VAR} or {CODEC_KEYS_FILE_VAR}, not both"
        )
    if inline:
        return parse_key_ring(inline, CODEC_KEYS_VAR)
    if file_name.strip():
        path = Path(file_name.strip())
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(
                f"invalid configuration: {CODEC_KEYS_FILE_VAR}: cannot read {path}: {exc.strerror}"
            ) from None
        return parse_key_ring(text, f"{CODEC_KEYS_FILE_VAR} ({path})")
    return None


def new_key() -> str:
    """A fresh random key, base64, for `OFFRAMP_CODEC_KEYS` (see README)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()
