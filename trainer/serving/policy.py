"""Greedy-Dual-Size-Frequency: the eviction policy of both adapter tiers.

An entry's priority is ``clock + uses * reload_cost / size``. The lowest goes first, and the
clock rises to each evicted priority, so entries not used for a while age out however often
they were used before. Compared with LRU it keeps the adapters that are cheap to hold and
expensive to fetch again, and on long-tail traffic a stream of one-off adapters does not
flush the few popular ones: a new entry starts one use above the clock, and an entry used
often sits further above it.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class _Entry:
    uses: int
    cost: float
    size: int
    priority: float


class GreedyDualSizeFrequency(Generic[K]):
    def __init__(self) -> None:
        self.clock = 0.0
        self._entries: dict[K, _Entry] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def touch(self, key: K, *, cost: float | None = None, size: int | None = None) -> None:
        """Count a use; a new entry needs ``cost`` (seconds to load it again) and ``size`` (bytes)."""
        entry = self._entries.get(key)
        if entry is None:
            if cost is None or size is None:
                raise KeyError(key)
            entry = self._entries[key] = _Entry(0, cost, size, 0.0)
        entry.uses += 1
        if cost is not None:
            entry.cost = cost
        # A floor on the cost keeps a load measured at zero seconds from looking free.
        entry.priority = self.clock + entry.uses * max(entry.cost, 1e-6) / max(entry.size, 1)

    def victim(self, exclude: Collection[K] = ()) -> K | None:
        """The entry to evict next, or None when every entry is excluded."""
        candidates = ((e.priority, k) for k, e in self._entries.items() if k not in exclude)
        chosen = min(candidates, key=lambda pair: pair[0], default=None)
        return None if chosen is None else chosen[1]

    def evict(self, key: K) -> None:
        self.clock = max(self.clock, self._entries.pop(key).priority)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
