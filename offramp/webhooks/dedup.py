"""Recently seen event ids: bounded in count and in age, in memory only.

The bound is what keeps a flood from growing the process; the age only has to cover the
signature's timestamp window (an older replay is refused by its timestamp anyway). After a restart
the set is empty: a redelivered event then wakes its order once more, which is harmless because a
wake is only a hint (the workflow re-fetches the order and debounces `poll_now`). Several receiver
replicas each keep their own set, with the same consequence.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        if max_entries < 1 or ttl_seconds <= 0:
            raise ValueError("max_entries and ttl_seconds must be positive")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> when first seen, oldest first
        self.evicted = 0  # dropped for room before their time: a replay of one is not caught

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self.ttl_seconds:
                return
            del self._seen[key]

    def add(self, key: str, now: float) -> bool:
        """Record `key`; False if it was seen within the last `ttl_seconds` (a duplicate)."""
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
            self.evicted += 1
        return True

    def discard(self, key: str) -> None:
        """Forget `key` (its event was refused after all, so a redelivery must count)."""
        self._seen.pop(key, None)
