"""Strict recipient checks (reused by the sell-order workflow)."""

from __future__ import annotations

import pytest

from offramp.chain.addresses import InvalidAddress, checksum, validate_recipient

GOOD = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # anvil account 2, EIP-55


def test_accepts_checksummed_lower_and_upper() -> None:
    assert checksum(GOOD) == GOOD
    assert checksum(GOOD.lower()) == GOOD
    assert checksum("0x" + GOOD[2:].upper()) == GOOD


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc", "EIP-55"),
        ("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x-prefixed"),
        ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293", "20-byte"),
        ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC00", "20-byte"),
        ("0xZZ44CdDdB6a900fa2b585dd299e03d12FA4293BC", "hex"),
        (" " + GOOD, "0x-prefixed"),
        ("", "0x-prefixed"),
        ("0x" + "0" * 40, "zero address"),
    ],
)
def test_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        validate_recipient(value)


def test_own_and_forbidden() -> None:
    with pytest.raises(InvalidAddress, match="own wallets"):
        validate_recipient(GOOD.lower(), own_addresses=[GOOD])
    with pytest.raises(InvalidAddress, match="not allowed"):
        validate_recipient(GOOD, forbidden=[GOOD.lower()])
    assert validate_recipient(GOOD, own_addresses=["0x" + "1" * 40]) == GOOD


def test_long_garbage_is_not_echoed() -> None:
    with pytest.raises(InvalidAddress) as err:
        checksum("x" * 500)
    assert "x" * 200 not in str(err.value)
