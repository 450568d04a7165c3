"""Classify `eth_sendRawTransaction` errors (geth/erigon, anvil 1.7.1, Besu): see
`reference/evm-sending.md`. Matching is on lower-cased substrings of the node's message."""

from __future__ import annotations

from offramp.chain.models import BroadcastKind

_PATTERNS: tuple[tuple[BroadcastKind, tuple[str, ...]], ...] = (
    (
        BroadcastKind.ALREADY_KNOWN,
        ("already known", "transaction already imported", "known transaction"),
    ),
    (BroadcastKind.NONCE_TOO_LOW, ("nonce too low",)),
    (BroadcastKind.UNDERPRICED, ("replacement transaction underpriced",)),
    (
        BroadcastKind.INSUFFICIENT_FUNDS,
        ("insufficient funds for gas * price + value", "upfront cost exceeds account balance"),
    ),
    (BroadcastKind.FEE_BELOW_BASE, ("max fee per gas less than block base fee",)),
)


def classify_broadcast_error(message: str) -> BroadcastKind | None:
    """The meaning of a node's refusal, or None when it is not one we know (unknown outcome:
    the caller retries the same bytes)."""
    text = message.lower()
    for kind, needles in _PATTERNS:
        if any(needle in text for needle in needles):
            return kind
    return None
