"""Webhook signatures: pure functions, no I/O, so every rule is testable without a server.

Both schemes sign the timestamp together with the raw body, so a captured request cannot be
replayed with a fresh timestamp; a timestamp outside the window is refused (and an event id seen
inside the window is refused by the receiver's dedup set).

- Kado [ours: Kado publishes no header names]: `X-Kado-Timestamp: <unix seconds>` and
  `X-Kado-Signature: <hex HMAC-SHA256(secret, "<timestamp>." + body)>` (the simulator signs so).
- KidaPay [doc: header names and `sha256=<hex>`; ours: the signed text, unpublished]:
  `x-kidapay-timestamp: <unix seconds or milliseconds>` and
  `x-kidapay-signature: sha256=<hex HMAC-SHA256(api key, "<timestamp>." + body)>`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

KADO_SIGNATURE_HEADER: Final = "X-Kado-Signature"
KADO_TIMESTAMP_HEADER: Final = "X-Kado-Timestamp"
KIDAPAY_SIGNATURE_HEADER: Final = "x-kidapay-signature"
KIDAPAY_TIMESTAMP_HEADER: Final = "x-kidapay-timestamp"
KIDAPAY_SIGNATURE_PREFIX: Final = "sha256="
DEFAULT_TOLERANCE_SECONDS: Final = 300.0
# A timestamp this large is in milliseconds (seconds reach it in the year 5138).
_MILLISECONDS_FROM: Final = 100_000_000_000
_HEX_DIGEST_CHARS: Final = 64


class SignatureRejected(Exception):
    """The request is not provably from the provider, or too old. `reason` is safe to return to
    the caller and to log: it never holds the secret, the expected signature or the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SchemeHeaders:
    """Where one provider puts its signature and timestamp (names are case-insensitive)."""

    signature: str
    timestamp: str


KADO_HEADERS: Final = SchemeHeaders(KADO_SIGNATURE_HEADER, KADO_TIMESTAMP_HEADER)
KIDAPAY_HEADERS: Final = SchemeHeaders(KIDAPAY_SIGNATURE_HEADER, KIDAPAY_TIMESTAMP_HEADER)


def hmac_hex(secret: SecretStr, timestamp: str, body: bytes) -> str:
    """hex HMAC-SHA256 of `<timestamp>.<body>`: the signed text of both schemes."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def sign_kado(body: bytes, secret: SecretStr, timestamp: int) -> dict[str, str]:
    """The headers the Kado simulator sends (and tests and the benchmark)."""
    stamp = str(timestamp)
    return {KADO_TIMESTAMP_HEADER: stamp, KADO_SIGNATURE_HEADER: hmac_hex(secret, stamp, body)}


def sign_kidapay(body: bytes, secret: SecretStr, timestamp: int) -> dict[str, str]:
    stamp = str(timestamp)
    signature = KIDAPAY_SIGNATURE_PREFIX + hmac_hex(secret, stamp, body)
    return {KIDAPAY_TIMESTAMP_HEADER: stamp, KIDAPAY_SIGNATURE_HEADER: signature}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (aiohttp's headers are, a plain dict from a test is not)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def check_timestamp(raw: str | None, now: float, tolerance: float) -> str:
    """The timestamp as signed, if it parses and lies within `tolerance` of `now` (either way:
    a clock ahead of ours is as suspicious as one behind)."""
    if raw is None or not raw.strip():
        raise SignatureRejected("missing timestamp header")
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise SignatureRejected("timestamp is not unix seconds")
    seconds = int(text)
    if seconds >= _MILLISECONDS_FROM:
        seconds //= 1000
    if abs(now - seconds) > tolerance:
        raise SignatureRejected("timestamp outside the allowed window")
    return text


def _check_signature(given: str, expected: str) -> None:
    candidate = given.strip().lower()
    if len(candidate) != _HEX_DIGEST_CHARS:
        raise SignatureRejected("signature is not a hex SHA-256 HMAC")
    if not hmac.compare_digest(candidate.encode(), expected.encode()):
        raise SignatureRejected("signature does not match")


def verify_kado(
    headers: Mapping[str, str],
    body: bytes,
    secret: SecretStr,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    names: SchemeHeaders = KADO_HEADERS,
) -> str:
    """Raise SignatureRejected unless the request is signed with `secret` and fresh; return the
    signature (a replay-proof id of this exact delivery)."""
    signature = _header(headers, names.signature)
    if signature is None or not signature.strip():
        raise SignatureRejected("missing signature header")
    stamp = check_timestamp(_header(headers, names.timestamp), now, tolerance)
    _check_signature(signature, hmac_hex(secret, stamp, body))
    return signature.strip().lower()


def verify_kidapay(
    headers: Mapping[str, str],
    body: bytes,
    secret: SecretStr,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    names: SchemeHeaders = KIDAPAY_HEADERS,
) -> str:
    """As `verify_kado`, for `sha256=<hex>` signatures (the prefix is required)."""
    signature = _header(headers, names.signature)
    if signature is None or not signature.strip():
        raise SignatureRejected("missing signature header")
    scheme, sep, digest = signature.strip().partition("=")
    if not sep or f"{scheme.lower()}=" != KIDAPAY_SIGNATURE_PREFIX:
        raise SignatureRejected("signature is not sha256=<hex>")
    stamp = check_timestamp(_header(headers, names.timestamp), now, tolerance)
    _check_signature(digest, hmac_hex(secret, stamp, body))
    return digest.strip().lower()
