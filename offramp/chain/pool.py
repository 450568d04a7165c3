"""Which pool wallet pays: spread by available balance, deterministic per payment.

The wallet must cover the amount plus the gas budget. Among those that can, every wallet with at
least half the best headroom counts as "as good as the best" and the payment id picks one of them
by rendezvous hashing: concurrent payments read the same balances (nothing is mined between their
preflights), so "the single richest" would send a whole burst to one wallet and its in-flight
limit; the hash spreads the burst, and wallets that ran low drop out of the choice.

The spread is by on-chain balance only: payments reserved but not yet mined are not subtracted
(that would need an entity query per preflight). The guard is the entity's admission: each
wallet's entity counts its outstanding amounts and gas budgets and holds a payment it cannot
cover without a nonce (NeedsAttention "insufficient funds") until a top-up, so a wallet chosen
by several concurrent payments never gives a nonce to one it cannot pay."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class WalletFunds:
    address: str
    native_wei: int
    asset_base_units: int  # of the paid asset; for the native coin the same as native_wei


def headroom(funds: WalletFunds, *, amount: int, native: bool, gas_cost_wei: int) -> int | None:
    """What would be left of the paid asset after this payment, or None if it cannot pay."""
    if native:
        left = funds.native_wei - amount - gas_cost_wei
        return left if left >= 0 else None
    if funds.native_wei < gas_cost_wei or funds.asset_base_units < amount:
        return None
    return funds.asset_base_units - amount


def _rank(payment_id: str, address: str) -> bytes:
    return hashlib.sha256(f"{payment_id}|{address.lower()}".encode()).digest()


def choose_wallet(
    payment_id: str,
    pool: list[WalletFunds],
    *,
    amount: int,
    native: bool,
    gas_cost_wei: int,
) -> WalletFunds | None:
    """The wallet that pays, or None when no wallet can cover amount + gas."""
    able = [
        (room, funds)
        for funds in pool
        if (room := headroom(funds, amount=amount, native=native, gas_cost_wei=gas_cost_wei))
        is not None
    ]
    if not able:
        return None
    best = max(room for room, _ in able)
    near_best = [funds for room, funds in able if 2 * room >= best]
    return min(near_best, key=lambda funds: _rank(payment_id, funds.address))


def best_funded(pool: list[WalletFunds]) -> WalletFunds:
    """The wallet with the most of the paid asset (then native coin; then a fixed
    hash of the address):
    the one to wait on when no wallet can pay now, the same for every run of a payment."""
    return max(pool, key=lambda f: (f.asset_base_units, f.native_wei, _rank("", f.address)))
