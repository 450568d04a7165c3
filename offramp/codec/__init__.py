"""Encrypted payloads (README "Encrypted payloads"): key ring, AES-GCM codec, codec server."""

from __future__ import annotations

from offramp.codec.aes import AesGcmCodec, PayloadDecryptError
from offramp.codec.keys import KeyRing, load_key_ring, parse_key_ring

__all__ = ["AesGcmCodec", "KeyRing", "PayloadDecryptError", "load_key_ring", "parse_key_ring"]
