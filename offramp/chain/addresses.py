"""Address checks: strict recipients (the payment preflight, the sell-order workflow) and the
optional addresses of provider orders and order inputs (`validate_address`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from eth_utils.address import is_address, is_checksum_address, to_checksum_address

ZERO_ADDRESS = "0x" + "0" * 40
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InvalidAddress(ValueError):
    """The value is not an acceptable recipient; the message says why (and names no secret)."""


def checksum(value: str) -> str:
    """A strict 0x + 40 hex digit address; a mixed-case one must carry a valid EIP-55 checksum."""
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 100 else "(value)"
        raise InvalidAddress(f"{shown!r} is not a 0x-prefixed 20-byte hex address")
    body = value[2:]
    mixed_case = body != body.lower() and body != body.upper()
    if mixed_case and not is_checksum_address(value):
        raise InvalidAddress(f"{value} has an invalid EIP-55 checksum")
    return to_checksum_address(value)


def validate_recipient(
    value: str, own_addresses: Iterable[str] = (), forbidden: Iterable[str] = ()
) -> str:
    """The checksummed recipient, or InvalidAddress: malformed, bad checksum, the zero address,
    one of our own wallets, or an address the caller forbids."""
    address = checksum(value)
    if address == ZERO_ADDRESS:
        raise InvalidAddress("the zero address cannot receive a payment")
    if address.lower() in {a.lower() for a in own_addresses}:
        raise InvalidAddress(f"{address} is one of our own wallets")
    if address.lower() in {a.lower() for a in forbidden}:
        raise InvalidAddress(f"{address} is not allowed as a recipient")
    return address


def validate_address(value: Any) -> str | None:
    """A 20-byte hex address, EIP-55 checksum verified when mixed case; "" and None mean absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a hex address string")
    text = value.strip()
    if not text:
        return None
    if not text.startswith("0x") or not is_address(text):
        raise ValueError("is not a 0x-prefixed 20-byte hex address")
    digits = text[2:]
    # eth_utils 6's is_address does not verify the checksum of a mixed-case address: do it here.
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text):
        raise ValueError("has a wrong EIP-55 checksum")
    return to_checksum_address(text)
