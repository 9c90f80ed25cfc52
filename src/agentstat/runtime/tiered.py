"""Exclusive hot/warm/cold tiers built from :class:`~agentstat.runtime.cache.Cache`.

Usage::

    from agentstat import TieredCache

    docs = TieredCache(name="docs")             # hot 100 / warm 500 / cold 2000 entries
    docs.put("k", "v", ttl=60)
    docs.get("k")

Each tier reports under ``agentstat.cache.tier=<tier name>`` and the whole cache under
``tier="all"``, so the whole-cache hit rate is exact while each tier's own rate shows
where entries are found.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic

from agentstat._metrics.counts import COUNTS, LookupCounts
from agentstat.runtime.cache import MISSING, Cache, Clock, K, V, _check_ttl, _LookupStats
from agentstat.semconv import TIER_ALL, TIER_NONE


@dataclass(frozen=True)
class Tier:
    """One level of a :class:`TieredCache`: its label, size bound and TTL (seconds)."""

    name: str
    maxsize: int
    ttl: float | None = None


#: Hot, warm and cold: 100 entries for 5 min, 500 for 30 min, 2000 for 1 h.
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("hot", 100, 300.0),
    Tier("warm", 500, 1800.0),
    Tier("cold", 2000, 3600.0),
)


class TieredCache(_LookupStats, Generic[K, V]):
    """Exclusive hot/warm/cold tiers: an entry lives in exactly one tier.

    A hit in a lower tier moves the entry to the top tier; an entry evicted by size
    from a tier moves down one tier (and leaves the cache from the last one). A tier's
    TTL bounds how long an entry may stay in that tier since it entered it; a ``ttl``
    given to :meth:`put` is an absolute limit for the entry across all tiers. Because
    ``put`` removes the key from every other tier, no stale copy can be served.
    """

    def __init__(
        self,
        tiers: Sequence[Tier] = DEFAULT_TIERS,
        *,
        name: str = "unnamed",
        clock: Clock = time.monotonic,
    ) -> None:
        if not tiers:
            raise ValueError("a TieredCache needs at least one tier")
        labels = [tier.name for tier in tiers]
        if len(set(labels)) != len(labels) or TIER_ALL in labels or TIER_NONE in labels:
            raise ValueError(f"tier names must be distinct, non-empty and not {TIER_ALL!r}")
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        # As given, for tier(name): the label of a tier is capped (CacheCounts) and
        # may be _OTHER past AGENTSTAT_MAX_NAMES distinct tier names.
        self._tier_names = labels
        # Tier caches hold (value, deadline or None); the deadline is put()'s ttl.
        self._tiers: list[Cache[K, tuple[V, float | None]]] = [
            Cache(tier.maxsize, tier.ttl, name=name, clock=clock, _tier=tier.name) for tier in tiers
        ]
        for index, tier_cache in enumerate(self._tiers[:-1]):
            tier_cache._on_evict = functools.partial(self._place, index + 1)
        self._counts = LookupCounts(name, TIER_ALL)
        COUNTS.register(self._counts, self)

    def _place(self, index: int, key: K, item: tuple[V, float | None]) -> None:
        """Insert into tier ``index`` for at most the item's remaining lifetime."""
        tier = self._tiers[index]
        deadline = item[1]
        ttl = tier.ttl
        if deadline is not None:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            ttl = remaining if ttl is None else min(ttl, remaining)
        tier.put(key, item, ttl)

    def get(self, key: K, default: Any = None) -> Any:
        """Look in each tier from the top; a lower-tier hit is promoted to the top."""
        with self._lock:
            for index, tier in enumerate(self._tiers):
                item = tier.get(key, MISSING)
                if item is MISSING:
                    continue
                if index:
                    tier.delete(key)
                    self._place(0, key, item)
                self._counts.hits += 1
                return item[0]
            self._counts.misses += 1
            return default

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss."""
        value = self.get(key, MISSING)
        return (False, None) if value is MISSING else (True, value)

    def _peek(self, key: K) -> Any:
        with self._lock:
            for tier in self._tiers:
                item = tier._peek(key)
                if item is not MISSING:
                    return item[0]
            return MISSING

    def __contains__(self, key: object) -> bool:
        return self._peek(key) is not MISSING  # type: ignore[arg-type]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Store in the top tier and drop any copy from the others."""
        deadline = None if _check_ttl(ttl) is None else self._clock() + ttl  # type: ignore[operator]
        with self._lock:
            for tier in self._tiers[1:]:
                tier.delete(key)
            self._place(0, key, (value, deadline))

    def delete(self, key: K) -> bool:
        with self._lock:
            return any([tier.delete(key) for tier in self._tiers])

    def clear(self) -> None:
        with self._lock:
            for tier in self._tiers:
                tier.clear()

    def tier(self, name: str) -> Cache[K, Any]:
        """The cache behind tier ``name``, for its counts and size (values are internal)."""
        for label, tier in zip(self._tier_names, self._tiers, strict=True):
            if label == name:
                return tier
        raise KeyError(f"{self.name!r} has no tier {name!r}")

    def __len__(self) -> int:
        return sum(len(tier) for tier in self._tiers)
