"""The broadcast-error classifier against the reference table (geth/erigon, anvil 1.7.1, Besu)."""

from __future__ import annotations

import pytest

from offramp.chain.broadcast_errors import classify_broadcast_error
from offramp.chain.models import BroadcastKind


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("already known", BroadcastKind.ALREADY_KNOWN),
        ("transaction already imported", BroadcastKind.ALREADY_KNOWN),
        ("Known transaction", BroadcastKind.ALREADY_KNOWN),
        ("nonce too low", BroadcastKind.NONCE_TOO_LOW),
        ("Nonce too low", BroadcastKind.NONCE_TOO_LOW),
        ("nonce too low: next nonce 5, tx nonce 3", BroadcastKind.NONCE_TOO_LOW),
        ("replacement transaction underpriced", BroadcastKind.UNDERPRICED),
        ("Replacement transaction underpriced", BroadcastKind.UNDERPRICED),
        ("insufficient funds for gas * price + value", BroadcastKind.INSUFFICIENT_FUNDS),
        ("Insufficient funds for gas * price + value", BroadcastKind.INSUFFICIENT_FUNDS),
        ("Upfront cost exceeds account balance", BroadcastKind.INSUFFICIENT_FUNDS),
        ("max fee per gas less than block base fee", BroadcastKind.FEE_BELOW_BASE),
        (
            "max fee per gas less than block base fee: address 0x.., maxFeePerGas: 1 baseFee: 7",
            BroadcastKind.FEE_BELOW_BASE,
        ),
    ],
)
def test_known_errors(message: str, kind: BroadcastKind) -> None:
    assert classify_broadcast_error(message) is kind


@pytest.mark.parametrize("message", ["intrinsic gas too low", "", "connection reset", "oops"])
def test_unknown_errors_are_not_guessed(message: str) -> None:
    assert classify_broadcast_error(message) is None
