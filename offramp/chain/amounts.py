"""Whole units <-> base units, exactly."""

from __future__ import annotations

from decimal import Decimal, localcontext

# Enough digits for any amount we accept (< 1e15 whole units, <= 36 decimals) and then some: the
# default context (28 digits) would round an 18-decimal amount above 1e10 units silently.
_PRECISION = 100


def exact_base_units(amount: Decimal, decimals: int) -> int | None:
    """`amount` in base units, or None if it has more fractional digits than `decimals`."""
    with localcontext(prec=_PRECISION):
        scaled = amount.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            return None
        return int(scaled)
