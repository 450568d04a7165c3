"""What the chain says, independently of Temporal: transfers per recipient and hot-wallet nonces.

Read straight from anvil (blocks and Transfer logs), so a payment the engine believes it made
once but that landed twice, or a nonce gap, shows here whatever the workflows report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from web3 import Web3

from offramp.devstack.chain import token_contract


@dataclass(frozen=True)
class WalletTx:
    sender: str  # lower case
    nonce: int
    to: str | None
    value: int


@dataclass(frozen=True)
class TokenTransfer:
    sender: str  # lower case
    recipient: str  # lower case
    value: int


@dataclass
class ChainAudit:
    """The verdict over one scenario's block range (everything lower-case addresses)."""

    paid_ok: int = 0  # expected payees with exactly one transfer of exactly the expected amount
    missing: list[str] = field(default_factory=list)  # expected payees with no transfer
    duplicated: list[str] = field(default_factory=list)  # more than one transfer
    wrong_amount: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # paid, but not expected to be
    wallet_txs: int = 0  # transactions the hot wallets sent in the range
    nonce_gaps: list[str] = field(default_factory=list)  # per wallet, what is wrong

    @property
    def ok(self) -> bool:
        return (
            not (self.missing or self.duplicated or self.wrong_amount or self.unexpected)
            and not self.nonce_gaps
        )

    def summary(self) -> str:
        if self.ok:
            return f"ok: {self.paid_ok} paid once, {self.wallet_txs} wallet txs, nonces contiguous"
        parts = [
            f"{len(self.missing)} unpaid",
            f"{len(self.duplicated)} paid twice",
            f"{len(self.wrong_amount)} wrong amount",
            f"{len(self.unexpected)} paid unexpectedly",
        ]
        parts += self.nonce_gaps
        return "FAIL: " + ", ".join(parts)


def audit(
    expected: Mapping[str, int],
    not_expected: Iterable[str],
    transfers: Iterable[TokenTransfer],
    txs: Iterable[WalletTx],
    nonces_before: Mapping[str, int],
    nonces_after: Mapping[str, int],
) -> ChainAudit:
    """`expected`: payee -> amount (base units) that must arrive exactly once; `not_expected`:
    payees that must get nothing (e.g. rejected orders). Nonces: each wallet's transactions in the
    range must use exactly nonces_before..nonces_after-1, each once."""
    result = ChainAudit()
    received: dict[str, list[int]] = defaultdict(list)
    for t in transfers:
        received[t.recipient].append(t.value)
    for payee, amount in expected.items():
        values = received.get(payee.lower(), [])
        if not values:
            result.missing.append(payee)
        elif len(values) > 1:
            result.duplicated.append(payee)
        elif values[0] != amount:
            result.wrong_amount.append(payee)
        else:
            result.paid_ok += 1
    result.unexpected = [p for p in not_expected if received.get(p.lower())]
    used: dict[str, Counter[int]] = defaultdict(Counter)
    for tx in txs:
        used[tx.sender][tx.nonce] += 1
        result.wallet_txs += 1
    for wallet, before in nonces_before.items():
        after = nonces_after[wallet]
        counts = used.get(wallet.lower(), Counter())
        if sorted(counts) != list(range(before, after)) or any(n > 1 for n in counts.values()):
            result.nonce_gaps.append(
                f"{wallet}: nonces {before}..{after - 1} expected, {sorted(counts)[:5]}... used"
            )
    return result


class ChainReader:
    """Reads one block range of the local chain (sync web3: run it in a thread)."""

    def __init__(self, rpc_url: str, token: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.token = token_contract(self.w3, token)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def nonces(self, wallets: Iterable[str]) -> dict[str, int]:
        return {
            w.lower(): int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(w), "latest"))
            for w in wallets
        }

    def token_transfers(self, from_block: int, to_block: int) -> list[TokenTransfer]:
        logs = self.token.events.Transfer().get_logs(from_block=from_block, to_block=to_block)
        return [
            TokenTransfer(
                str(log["args"]["from"]).lower(),
                str(log["args"]["to"]).lower(),
                int(log["args"]["value"]),
            )
            for log in logs
        ]

    def wallet_txs(self, wallets: Iterable[str], from_block: int, to_block: int) -> list[WalletTx]:
        senders = {w.lower() for w in wallets}
        found = []
        for number in range(from_block, to_block + 1):
            block = self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                assert not isinstance(tx, bytes)
                sender = str(tx["from"]).lower()
                if sender in senders:
                    to = str(tx["to"]).lower() if tx.get("to") else None
                    found.append(WalletTx(sender, int(tx["nonce"]), to, int(tx["value"])))
        return found
