"""Naive list-based designs, written here as baselines (not used by agentstat).

The naive designs keep its LRU order in a list (``list.remove`` on
every hit and put: O(n)), scans every instance on every balancer selection (O(n)), and
keeps every duration in a list. These re-implementations keep exactly those costs so
the suite can show what agentstat's O(1) structures buy; their known correctness bugs
(a cached falsy value reads as a miss, no release guarantee) are irrelevant to timing
and kept out where they would change the work done.
"""

from __future__ import annotations

import random
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

MISSING = object()


class ListLRU:
    """dict of (value, expiry) plus a list for recency: hits and puts are O(n)."""

    def __init__(self, maxsize: int, ttl: float = 300.0) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.entries: dict[Hashable, tuple[Any, float]] = {}
        self.order: list[Hashable] = []
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = MISSING) -> Any:
        entry = self.entries.get(key)
        if entry is None or entry[1] < time.time():
            self.misses += 1
            if entry is not None:
                del self.entries[key]
                self.order.remove(key)
            return default
        self.hits += 1
        self.order.remove(key)  # the O(n) the card pays on every hit
        self.order.append(key)
        return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        if key in self.entries:
            self.order.remove(key)
        elif len(self.entries) >= self.maxsize:
            oldest = self.order.pop(0)  # O(n) shift of the whole list
            del self.entries[oldest]
        self.entries[key] = (value, time.time() + self.ttl)
        self.order.append(key)


class ListTiered:
    """Three list-based LRUs tried hot → warm → cold, promoting one tier up on a hit."""

    def __init__(self, hot: int, warm: int, cold: int) -> None:
        self.tiers = (ListLRU(hot, 300.0), ListLRU(warm, 1800.0), ListLRU(cold, 3600.0))

    def get(self, key: Hashable, default: Any = MISSING) -> Any:
        for i, tier in enumerate(self.tiers):
            value = tier.get(key)
            if value is not MISSING:
                if i:
                    self.tiers[i - 1].put(key, value)
                return value
        return default

    def put(self, key: Hashable, value: Any) -> None:
        # The card has no put; writing to the hot tier is what its users must do.
        self.tiers[0].put(key, value)


@dataclass
class ListInstance:
    id: str
    current_load: int = 0
    max_capacity: int = 10
    weight: float = 1.0
    is_healthy: bool = True


@dataclass
class ListBalancer:
    """Filters every instance on every selection, then picks: O(n) per acquire."""

    strategy: str
    instances: list[ListInstance] = field(default_factory=list)
    rr_index: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def select(self) -> ListInstance | None:
        free = [i for i in self.instances if i.is_healthy and i.current_load < i.max_capacity]
        if not free:
            return None
        if self.strategy == "round_robin":
            chosen = free[self.rr_index % len(free)]
            self.rr_index += 1
            return chosen
        if self.strategy == "least_loaded":
            return min(free, key=lambda i: i.current_load / i.max_capacity)
        weights = [i.weight * (1 - i.current_load / i.max_capacity) for i in free]
        return self.rng.choices(free, weights=weights)[0]

    def acquire(self) -> ListInstance | None:
        chosen = self.select()
        if chosen is not None:
            chosen.current_load += 1
        return chosen

    def release(self, instance: ListInstance) -> None:
        instance.current_load = max(0, instance.current_load - 1)


LIST_STRATEGIES = ("round_robin", "least_loaded", "weighted")


def list_balancer(strategy: str, size: int) -> ListBalancer:
    """A list-based balancer with ``size`` identical instances."""
    return ListBalancer(strategy, [ListInstance(f"i{n}") for n in range(size)])


class ListCollector:
    """A naive collector: every duration appended to a per-agent list, forever."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.counts: dict[str, int] = {}

    def record(self, agent: str, seconds: float) -> None:
        times = self.times.get(agent)
        if times is None:
            times = self.times[agent] = []
            self.counts[agent] = 0
        times.append(seconds)
        self.counts[agent] += 1
