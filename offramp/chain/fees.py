"""Fee quoting and geth's replacement rule (which anvil does not enforce, so it is tested here).

geth (core/txpool/legacypool/list.go) accepts a replacement at the same nonce only if the new
maxFeePerGas AND maxPriorityFeePerGas are each strictly greater than the old ones and at least
old * (100 + 10) / 100 (integer division). We bump to the ceiling of +10%, never less than +1 wei.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_BUMP_PERCENT = 10


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def geth_accepts_replacement(old: Fees, new: Fees, price_bump: int = PRICE_BUMP_PERCENT) -> bool:
    """geth's check, transcribed: both fees strictly higher and at least the threshold."""
    if old.max_fee_per_gas >= new.max_fee_per_gas:
        return False
    if old.max_priority_fee_per_gas >= new.max_priority_fee_per_gas:
        return False
    threshold_fee = old.max_fee_per_gas * (100 + price_bump) // 100
    threshold_tip = old.max_priority_fee_per_gas * (100 + price_bump) // 100
    return new.max_fee_per_gas >= threshold_fee and new.max_priority_fee_per_gas >= threshold_tip


def min_bumped(value: int, price_bump: int = PRICE_BUMP_PERCENT) -> int:
    """The least value geth accepts to replace `value`: ceil(value * 1.1), at least value + 1."""
    return max(value + 1, -(-value * (100 + price_bump) // 100))


def quote(base_fee_per_gas: int, suggested_tip: int, cap: int) -> Fees:
    """maxFee = 2 x base + tip (survives six full blocks of base-fee rises), capped at `cap`."""
    tip = min(max(suggested_tip, 0), cap)
    max_fee = min(2 * base_fee_per_gas + tip, cap)
    return Fees(max_fee_per_gas=max(max_fee, tip, 1), max_priority_fee_per_gas=tip)


def bump(old: Fees, current: Fees, cap: int) -> Fees | None:
    """The replacement fees: at least geth's minimum bump over `old`, at least today's quote
    `current`; None when that would exceed `cap` (stop bumping, flag for a person)."""
    tip = max(min_bumped(old.max_priority_fee_per_gas), current.max_priority_fee_per_gas)
    max_fee = max(min_bumped(old.max_fee_per_gas), current.max_fee_per_gas, tip)
    if max_fee > cap:
        return None
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
