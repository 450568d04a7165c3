"""The dedup set: duplicates inside the age window, bounded in size and age."""

from __future__ import annotations

import pytest

from offramp.webhooks.dedup import RecentIds


def test_a_second_sight_within_the_ttl_is_a_duplicate() -> None:
    ids = RecentIds(max_entries=10, ttl_seconds=60)
    assert ids.add("kado:e1", now=0.0)
    assert not ids.add("kado:e1", now=59.0)
    assert ids.add("kado:e2", now=59.0)


def test_entries_expire_after_the_ttl() -> None:
    ids = RecentIds(max_entries=10, ttl_seconds=60)
    ids.add("a", now=0.0)
    ids.add("b", now=30.0)
    assert ids.add("a", now=60.0)  # expired: seen again counts as new
    assert len(ids) == 2  # "a" (again) and "b"
    assert ids.add("x", now=200.0) and len(ids) == 1  # everything older went


def test_the_size_bound_evicts_the_oldest() -> None:
    ids = RecentIds(max_entries=3, ttl_seconds=600)
    for i in range(5):
        assert ids.add(f"e{i}", now=float(i))
    assert len(ids) == 3 and ids.evicted == 2
    assert ids.add("e0", now=6.0)  # evicted: not recognised any more
    assert not ids.add("e4", now=6.0)


def test_discard_forgets() -> None:
    ids = RecentIds(max_entries=3, ttl_seconds=600)
    ids.add("e", now=0.0)
    ids.discard("e")
    ids.discard("never-seen")
    assert ids.add("e", now=1.0)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        RecentIds(max_entries=0, ttl_seconds=1)
    with pytest.raises(ValueError):
        RecentIds(max_entries=1, ttl_seconds=0)
