"""Base units are exact whatever the size: the preflight and the order checks agree."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from activities.chain import to_base_units
from offramp.chain.amounts import exact_base_units as order_base_units


def test_large_eighteen_decimal_amount_is_not_rounded() -> None:
    amount = Decimal("12345678901.123456789012345678")  # 29 significant digits
    assert to_base_units(amount, 18) == 12345678901123456789012345678
    assert order_base_units(amount, 18) == 12345678901123456789012345678


@given(
    units=st.integers(min_value=1, max_value=10**15 * 10**18 - 1),
    decimals=st.integers(min_value=0, max_value=36),
)
def test_round_trip_is_exact(units: int, decimals: int) -> None:
    amount = Decimal((0, tuple(int(d) for d in str(units)), -decimals))  # exact, no context
    assert to_base_units(amount, decimals) == units
    assert order_base_units(amount, decimals) == units
