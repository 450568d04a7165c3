"""The signature schemes as pure functions: what passes, and each way a request is refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import SecretStr

from offramp.webhooks.signatures import (
    KADO_SIGNATURE_HEADER,
    KADO_TIMESTAMP_HEADER,
    KIDAPAY_SIGNATURE_HEADER,
    KIDAPAY_TIMESTAMP_HEADER,
    SchemeHeaders,
    SignatureRejected,
    sign_kado,
    sign_kidapay,
    verify_kado,
    verify_kidapay,
)

SECRET = SecretStr("shared-secret-for-tests")
BODY = b'{"id":"evt-1","resource":"order","type":"order.updated","data":{"id":"abc"}}'
NOW = 1_780_000_000


def reference_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_kado_signs_timestamp_dot_body() -> None:
    headers = sign_kado(BODY, SECRET, NOW)
    assert headers[KADO_TIMESTAMP_HEADER] == str(NOW)
    expected = reference_hmac("shared-secret-for-tests", f"{NOW}.".encode() + BODY)
    assert headers[KADO_SIGNATURE_HEADER] == expected
    assert verify_kado(headers, BODY, SECRET, now=NOW) == expected


def test_kidapay_signs_with_sha256_prefix() -> None:
    headers = sign_kidapay(BODY, SECRET, NOW)
    digest = reference_hmac("shared-secret-for-tests", f"{NOW}.".encode() + BODY)
    assert headers[KIDAPAY_SIGNATURE_HEADER] == f"sha256={digest}"
    assert headers[KIDAPAY_TIMESTAMP_HEADER] == str(NOW)
    assert verify_kidapay(headers, BODY, SECRET, now=NOW) == digest


def test_header_names_are_case_insensitive_and_hex_case_does_not_matter() -> None:
    signed = sign_kidapay(BODY, SECRET, NOW)
    shouted = {k.upper(): v.upper() for k, v in signed.items()}  # "SHA256=<HEX>"
    verify_kidapay(shouted, BODY, SECRET, now=NOW)
    kado = {k.lower(): v for k, v in sign_kado(BODY, SECRET, NOW).items()}
    verify_kado(kado, BODY, SECRET, now=NOW)


def test_kidapay_accepts_a_millisecond_timestamp() -> None:
    millis = NOW * 1000 + 250
    verify_kidapay(sign_kidapay(BODY, SECRET, millis), BODY, SECRET, now=NOW)


def test_configured_header_names() -> None:
    names = SchemeHeaders("X-Hook-Sig", "X-Hook-Time")
    default = sign_kado(BODY, SECRET, NOW)
    headers = {
        "X-Hook-Sig": default[KADO_SIGNATURE_HEADER],
        "X-Hook-Time": default[KADO_TIMESTAMP_HEADER],
    }
    verify_kado(headers, BODY, SECRET, now=NOW, names=names)
    with pytest.raises(SignatureRejected, match="missing signature"):
        verify_kado(default, BODY, SECRET, now=NOW, names=names)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({KADO_SIGNATURE_HEADER: None}, "missing signature header"),
        ({KADO_SIGNATURE_HEADER: " "}, "missing signature header"),
        ({KADO_TIMESTAMP_HEADER: None}, "missing timestamp header"),
        ({KADO_TIMESTAMP_HEADER: "yesterday"}, "not unix seconds"),
        ({KADO_TIMESTAMP_HEADER: "-5"}, "not unix seconds"),
        ({KADO_TIMESTAMP_HEADER: "١٧٨٠٠٠٠٠٠٠"}, "not unix seconds"),  # non-ASCII digits
        ({KADO_TIMESTAMP_HEADER: str(NOW - 301)}, "outside the allowed window"),
        ({KADO_TIMESTAMP_HEADER: str(NOW + 301)}, "outside the allowed window"),
        ({KADO_TIMESTAMP_HEADER: str(NOW + 1)}, "does not match"),  # fresh, but not as signed
        ({KADO_SIGNATURE_HEADER: "ab" * 32}, "does not match"),
        ({KADO_SIGNATURE_HEADER: "not-hex"}, "not a hex SHA-256"),
    ],
)
def test_kado_refusals(change: dict[str, str | None], reason: str) -> None:
    headers: dict[str, str] = dict(sign_kado(BODY, SECRET, NOW))
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    with pytest.raises(SignatureRejected, match=reason):
        verify_kado(headers, BODY, SECRET, now=NOW)


def test_inside_the_window_either_way_passes() -> None:
    for skew in (-300, 300):
        headers = sign_kado(BODY, SECRET, NOW + skew)
        verify_kado(headers, BODY, SECRET, now=NOW)
    with pytest.raises(SignatureRejected, match="window"):
        verify_kado(sign_kado(BODY, SECRET, NOW - 61), BODY, SECRET, now=NOW, tolerance=60)


def test_body_or_secret_changed_is_refused() -> None:
    headers = sign_kado(BODY, SECRET, NOW)
    with pytest.raises(SignatureRejected, match="does not match"):
        verify_kado(headers, BODY + b" ", SECRET, now=NOW)
    with pytest.raises(SignatureRejected, match="does not match"):
        verify_kado(headers, BODY, SecretStr("another-secret"), now=NOW)


@pytest.mark.parametrize(
    "signature",
    ["", "sha1=" + "ab" * 20, "ab" * 32, "sha256:" + "ab" * 32, "sha256=" + "ab" * 32],
)
def test_kidapay_refusals(signature: str) -> None:
    headers = {KIDAPAY_SIGNATURE_HEADER: signature, KIDAPAY_TIMESTAMP_HEADER: str(NOW)}
    with pytest.raises(SignatureRejected):
        verify_kidapay(headers, BODY, SECRET, now=NOW)


def test_kidapay_stale_and_missing_timestamp() -> None:
    stale = sign_kidapay(BODY, SECRET, NOW - 3600)
    with pytest.raises(SignatureRejected, match="window"):
        verify_kidapay(stale, BODY, SECRET, now=NOW)
    missing = {KIDAPAY_SIGNATURE_HEADER: sign_kidapay(BODY, SECRET, NOW)[KIDAPAY_SIGNATURE_HEADER]}
    with pytest.raises(SignatureRejected, match="missing timestamp"):
        verify_kidapay(missing, BODY, SECRET, now=NOW)


def test_a_refusal_never_names_the_secret_or_the_expected_signature() -> None:
    headers = sign_kado(BODY, SECRET, NOW)
    expected = headers[KADO_SIGNATURE_HEADER]
    headers[KADO_SIGNATURE_HEADER] = "cd" * 32
    with pytest.raises(SignatureRejected) as refused:
        verify_kado(headers, BODY, SECRET, now=NOW)
    text = str(refused.value) + repr(refused.value)
    assert SECRET.get_secret_value() not in text and expected not in text
