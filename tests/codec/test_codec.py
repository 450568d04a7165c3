"""The AES-GCM codec and its key ring: round trip, rotation, refusal of unknown or altered data."""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from offramp.codec import AesGcmCodec, PayloadDecryptError, load_key_ring, parse_key_ring
from offramp.codec.aes import ENCODING, KEY_ID_KEY
from offramp.config import ConfigError
from offramp.converter import DATA_CONVERTER, data_converter, encrypting_converter


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def ring(text: str) -> AesGcmCodec:
    return AesGcmCodec(parse_key_ring(text, "OFFRAMP_CODEC_KEYS"))


async def test_round_trip_hides_the_payload_and_names_the_key() -> None:
    codec = ring(f"k1:{key()}")
    [plain] = DATA_CONVERTER.payload_converter.to_payloads(["0xDeposit user-42 123.456789"])
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_KEY] == b"k1"
    assert b"user-42" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the inner encoding is sealed too
    [back] = await codec.decode([sealed])
    assert back == plain


async def test_an_old_key_still_decodes_after_a_new_active_key_is_added() -> None:
    old, new = key(), key()
    before = ring(f"old:{old}")
    after = ring(f"new:{new},old:{old}")
    [plain] = DATA_CONVERTER.payload_converter.to_payloads([{"amount": "10.5"}])
    [from_before] = await before.encode([plain])
    assert (await after.decode([from_before])) == [plain]
    [from_after] = await after.encode([plain])
    assert from_after.metadata[KEY_ID_KEY] == b"new"  # the active (first) key encodes
    with pytest.raises(PayloadDecryptError, match="'new', which is not in the key ring"):
        await before.decode([from_after])


async def test_altered_or_relabelled_payloads_are_refused() -> None:
    codec = ring(f"a:{key()},b:{key()}")
    [plain] = DATA_CONVERTER.payload_converter.to_payloads(["secret"])
    [sealed] = await codec.encode([plain])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + b"\x00")
    with pytest.raises(PayloadDecryptError, match="does not authenticate"):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_KEY: b"b"}, data=sealed.data)
    with pytest.raises(PayloadDecryptError, match="does not authenticate"):
        await codec.decode([relabelled])


async def test_unencrypted_payloads_pass_through_decode() -> None:
    # Histories written before encryption was turned on keep reading.
    [plain] = DATA_CONVERTER.payload_converter.to_payloads([Decimal("1.5")])
    assert (await ring(f"k:{key()}").decode([plain])) == [plain]


async def test_the_encrypting_converter_round_trips_values_exactly() -> None:
    converter = encrypting_converter(parse_key_ring(f"k:{key()}", "X"))
    payloads = await converter.encode([Decimal("0.012345678901234567"), "user-42"])
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    assert await converter.decode(payloads, [Decimal, str]) == [
        Decimal("0.012345678901234567"),
        "user-42",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no key listed"),
        ("nocolon", "expected 'id:base64key'"),
        ("k1:!!!notbase64", r"entry 1 \(k1\): not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key is 5 bytes, AES-256 needs 32"),
        ("k1:{k},k1:{k}", "listed twice"),
    ],
)
def test_bad_key_ring_names_the_variable_and_entry(text: str, message: str) -> None:
    text = text.replace("{k}", key())
    with pytest.raises(ConfigError, match=message) as caught:
        parse_key_ring(text, "OFFRAMP_CODEC_KEYS")
    assert "OFFRAMP_CODEC_KEYS" in str(caught.value)


def test_a_wrong_length_key_is_not_echoed() -> None:
    bad = base64.b64encode(b"x" * 31).decode()
    with pytest.raises(ConfigError) as caught:
        load_key_ring({"OFFRAMP_CODEC_KEYS": f"k:{bad}"})
    assert bad not in str(caught.value)


def test_keys_from_a_file_and_encryption_off_when_unset(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-12\nnew:{key()}\nold:{key()}\n")
    loaded = load_key_ring({"OFFRAMP_CODEC_KEYS_FILE": str(path)})
    assert loaded is not None and loaded.active_id == "new" and set(loaded.keys) == {"new", "old"}
    assert load_key_ring({}) is None
    assert data_converter({}) is DATA_CONVERTER  # encryption off: nothing changes
    with pytest.raises(ConfigError, match="not both"):
        load_key_ring({"OFFRAMP_CODEC_KEYS": f"k:{key()}", "OFFRAMP_CODEC_KEYS_FILE": str(path)})
