"""The benchmark's chain audit catches what it exists to catch: a double payment, a missing or
wrong one, a payment that should not exist, and a nonce gap or reuse."""

from __future__ import annotations

from offramp.bench.onchain import TokenTransfer, WalletTx, audit

WALLET = "0xaa"


def transfers(*pairs: tuple[str, int]) -> list[TokenTransfer]:
    return [TokenTransfer(WALLET, to, value) for to, value in pairs]


def txs(*nonces: int) -> list[WalletTx]:
    return [WalletTx(WALLET, n, "0xtoken", 0) for n in nonces]


def test_clean_run_is_ok() -> None:
    verdict = audit(
        {"0xb1": 5, "0xb2": 7},
        ["0xb3"],
        transfers(("0xb1", 5), ("0xb2", 7)),
        txs(10, 11),
        {WALLET: 10},
        {WALLET: 12},
    )
    assert verdict.ok and verdict.paid_ok == 2, verdict.summary()


def test_double_missing_wrong_and_unexpected_payments_fail() -> None:
    verdict = audit(
        {"0xb1": 5, "0xb2": 7, "0xb3": 9},
        ["0xb4"],
        transfers(("0xb1", 5), ("0xb1", 5), ("0xb2", 8), ("0xb4", 1)),
        txs(0, 1, 2, 3),
        {WALLET: 0},
        {WALLET: 4},
    )
    assert not verdict.ok
    assert verdict.duplicated == ["0xb1"]
    assert verdict.wrong_amount == ["0xb2"]
    assert verdict.missing == ["0xb3"]
    assert verdict.unexpected == ["0xb4"]
    assert verdict.summary().startswith("FAIL")


def test_nonce_gap_and_reuse_fail() -> None:
    gap = audit({}, [], [], txs(0, 2), {WALLET: 0}, {WALLET: 3})
    reuse = audit({}, [], [], txs(0, 1, 1), {WALLET: 0}, {WALLET: 2})
    assert gap.nonce_gaps and not gap.ok
    assert reuse.nonce_gaps and not reuse.ok
