"""The fee bump against geth's replacement rule (anvil accepts +1 wei, so it cannot test this)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offramp.chain.fees import Fees, bump, geth_accepts_replacement, min_bumped, quote

WEI = st.integers(min_value=0, max_value=10**15)


@st.composite
def fee_pairs(draw: st.DrawFn) -> Fees:
    tip = draw(WEI)
    max_fee = draw(st.integers(min_value=max(tip, 1), max_value=max(tip, 1) + 10**15))
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)


def test_geth_rule_examples() -> None:
    old = Fees(100, 10)
    assert geth_accepts_replacement(old, Fees(110, 11))
    assert not geth_accepts_replacement(old, Fees(109, 11))  # fee cap below +10%
    assert not geth_accepts_replacement(old, Fees(110, 10))  # tip not strictly higher
    assert not geth_accepts_replacement(old, Fees(100, 20))  # only the tip raised (geth #24284)
    assert not geth_accepts_replacement(Fees(1, 0), Fees(1, 1))
    assert geth_accepts_replacement(Fees(1, 0), Fees(2, 1))  # +1 wei where 10% rounds to 0


@given(old=fee_pairs(), current=fee_pairs(), cap=st.integers(min_value=1, max_value=10**16))
def test_bump_always_satisfies_geths_rule_or_stops_at_the_cap(
    old: Fees, current: Fees, cap: int
) -> None:
    new = bump(old, current, cap)
    if new is None:
        # Stopping is only allowed when even the least acceptable bump would pass the cap.
        least = max(min_bumped(old.max_fee_per_gas), current.max_fee_per_gas)
        least = max(
            least, min_bumped(old.max_priority_fee_per_gas), current.max_priority_fee_per_gas
        )
        assert least > cap
        return
    assert geth_accepts_replacement(old, new)
    assert new.max_fee_per_gas <= cap
    assert new.max_fee_per_gas >= new.max_priority_fee_per_gas
    assert new.max_fee_per_gas >= current.max_fee_per_gas
    assert new.max_priority_fee_per_gas >= current.max_priority_fee_per_gas


@given(value=WEI)
def test_min_bump_is_geths_least_or_one_wei_more(value: int) -> None:
    ours = min_bumped(value)
    # With the other field comfortably raised, only this one decides.
    assert geth_accepts_replacement(Fees(value, 0), Fees(ours, 1))
    geth_least = max(value + 1, value * 110 // 100)  # geth compares with the floor
    assert not geth_accepts_replacement(Fees(value, 0), Fees(geth_least - 1, 1))
    assert ours - geth_least in (0, 1)  # we round up: never under, at most 1 wei over


@given(base=WEI, tip=WEI, cap=st.integers(min_value=1, max_value=10**16))
def test_quote_respects_the_cap(base: int, tip: int, cap: int) -> None:
    fees = quote(base, tip, cap)
    assert fees.max_priority_fee_per_gas <= cap
    assert fees.max_fee_per_gas >= fees.max_priority_fee_per_gas
    assert fees.max_fee_per_gas <= max(cap, 1)
