"""An LRU + TTL cache that counts its own hits, misses and evictions.

Usage::

    from agentstat import Cache, MISSING

    answers = Cache(maxsize=10_000, ttl=300, name="answers")
    answers.put("q1", None)                     # None is a value like any other
    answers.get("q1")                           # -> None, counted as a hit
    answers.get("q2", MISSING) is MISSING       # -> True, counted as a miss
    found, value = answers.lookup("q1")         # -> (True, None)

Every cache reports ``agentstat.cache.lookups`` (hit/miss), ``agentstat.cache.evictions``
(size/expired), ``agentstat.cache.size`` and ``agentstat.cache.capacity`` under its
``name``. Counting is a plain integer bump under the lock the cache takes anyway;
OpenTelemetry reads the integers at collection time (see :mod:`agentstat._metrics.counts`).
Why hand-written storage on :class:`collections.OrderedDict`: ``get`` + ``move_to_end``
and ``popitem(last=False)`` are O(1) and run in C (about 0.1 µs for a hit), while
cachetools' ``TTLCache.get`` costs 1.2–2 µs and its ``LRUCache.get`` 0.2–0.5 µs
(``python -m benchmarks --only caches``); neither cachetools cache is thread-safe
(we would wrap them in a lock anyway), neither tells a size eviction from an expiry
without subclassing their internals, and a cached value cannot be told from a miss
without a second lookup. The LRU + TTL logic on top of an OrderedDict is ~60 lines.

Thread safety: every mutation takes the cache's lock, except the hit path of ``get``,
which does one dict read, one ``move_to_end`` and one integer increment, each atomic
under the GIL: CPython switches threads only at calls and backward jumps, never between
the load and the store of ``hits += 1`` on a slot (the 8 threads x 100k test forces
switches every microsecond and fails on a racy counter). That halves the cost of a
hit: a lock costs ~150 ns, more than the OrderedDict work.
On a free-threaded build (``sys._is_gil_enabled()`` false) hits take the lock too.

TTLs run on ``time.monotonic`` (wall-clock jumps neither expire nor revive entries); pass
``clock=`` to control time in tests. Expired entries are dropped when looked up or when
they reach the LRU end; :meth:`Cache.expire` purges all of them at once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, TypeVar, overload

from agentstat._metrics.counts import COUNTS, CacheCounts
from agentstat.semconv import TIER_NONE

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

Clock = Callable[[], float]


class _Missing:
    """Type of :data:`MISSING`; there is exactly one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by ``get(key, MISSING)`` on a miss; never a cached value.
MISSING: Final = _Missing()


#: True on a normal CPython build. Free-threaded builds (3.13t) take the lock for hits too.
_GIL: Final = bool(getattr(sys, "_is_gil_enabled", lambda: True)())


def _check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return ttl


class _LookupStats:
    """``hits``, ``misses`` and ``hit_rate`` of a cache, read from its counts object."""

    __slots__ = ()
    _counts: CacheCounts

    @property
    def hits(self) -> int:
        return self._counts.hits

    @property
    def misses(self) -> int:
        return self._counts.misses

    @property
    def hit_rate(self) -> float:
        """Hits / lookups since creation; 0.0 before the first lookup."""
        total = self._counts.hits + self._counts.misses
        return self._counts.hits / total if total else 0.0


class Cache(_LookupStats, Generic[K, V]):
    """Thread-safe LRU cache with a size bound and per-entry or default TTL; O(1).

    ``ttl=None`` keeps entries until they are evicted by size. ``get`` returns
    ``default`` only on a miss, so any cached value, ``None`` included, is a hit.
    """

    __slots__ = ("__weakref__", "_clock", "_counts", "_data", "_lock", "_lookup", "_move",
                 "_on_evict", "maxsize", "name", "ttl")  # fmt: skip

    def __init__(
        self,
        maxsize: int = 1024,
        ttl: float | None = None,
        *,
        name: str = "unnamed",
        clock: Clock = time.monotonic,
        _tier: str = TIER_NONE,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = _check_ttl(ttl)
        self.name = name
        self._clock = clock
        # key -> (value, expires_at or None); the first item is the least recently used
        self._data: OrderedDict[K, tuple[V, float | None]] = OrderedDict()
        # Bound once for the hit path (see get); _data is never replaced.
        self._lookup = self._data.get
        self._move = self._data.move_to_end
        self._lock = threading.Lock()
        self._counts = CacheCounts(name, _tier)
        self._on_evict: Callable[[K, V], None] | None = None
        COUNTS.register(self._counts, self)

    # -- lookups ---------------------------------------------------------------------

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: Any = None) -> Any:
        """The value for ``key`` (a hit, made most recently used), else ``default``."""
        # Hit path without the lock (see _GIL below): the dict read, move_to_end and the
        # integer bump are each atomic under the GIL. Misses and expiry take the lock.
        # Callables are read from slots into locals before the call: on 3.11 a call
        # spelt `self._data.get(key)` or `self._clock()` stays unspecialised (the
        # attribute is not a method of the class), which cost ~15 % of a hit.
        lookup = self._lookup
        entry = lookup(key)
        if entry is not None:
            value, expires = entry
            clock = self._clock
            if expires is None or expires > clock():
                move = self._move
                try:  # noqa: SIM105 - contextlib.suppress would double the cost of a hit
                    move(key)
                except KeyError:  # evicted by another thread since we read it: still a hit
                    pass
                self._counts.hits += 1
                return value
        return self._miss(key, default)

    def _miss(self, key: K, default: Any) -> Any:
        lock = self._lock
        lock.acquire()  # acquire/try/finally: half the cost of `with lock` on 3.11
        try:
            entry = self._data.get(key)
            if entry is not None:
                expires = entry[1]
                if expires is None or expires > self._clock():  # put meanwhile
                    self._data.move_to_end(key)
                    self._counts.hits += 1
                    return entry[0]
                del self._data[key]
                self._counts.evicted_expired += 1
            self._counts.misses += 1
            return default
        finally:
            lock.release()

    def _get_locked(self, key: K, default: Any = None) -> Any:
        return self._miss(key, default)  # _miss is a full lookup under the lock

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss; counted like ``get``."""
        value = self.get(key, MISSING)
        if value is MISSING:
            return False, None
        return True, value

    def _peek(self, key: K) -> Any:
        """The live value or MISSING, without counting or reordering (single flight)."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or (entry[1] is not None and entry[1] <= self._clock()):
                return MISSING
            return entry[0]

    def __contains__(self, key: object) -> bool:
        return self._peek(key) is not MISSING  # type: ignore[arg-type]

    # -- updates ---------------------------------------------------------------------

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Store ``value``; ``ttl`` (seconds) overrides the cache's default for this entry."""
        if ttl is None:
            ttl = self.ttl
        else:
            _check_ttl(ttl)
        expires = None if ttl is None else self._clock() + ttl
        lock = self._lock
        lock.acquire()  # as in _miss
        try:
            data = self._data
            if key in data:
                data.move_to_end(key)
            data[key] = (value, expires)
            while len(data) > self.maxsize:
                self._evict_oldest()
        finally:
            lock.release()

    def _evict_oldest(self) -> None:
        key, (value, expires) = self._data.popitem(last=False)
        if expires is not None and expires <= self._clock():
            self._counts.evicted_expired += 1
            return
        self._counts.evicted_size += 1
        if self._on_evict is not None:
            self._on_evict(key, value)

    def delete(self, key: K) -> bool:
        """Remove ``key``; True if it was present. Not counted as an eviction."""
        with self._lock:
            return self._data.pop(key, MISSING) is not MISSING

    def clear(self) -> None:
        """Remove every entry. Counts are kept: they are monotonic for the process."""
        with self._lock:
            self._data.clear()

    def expire(self) -> int:
        """Drop every expired entry now (O(n)); returns how many were dropped."""
        with self._lock:
            now = self._clock()
            # list() copies in one C call: lock-free hits reorder the dict meanwhile
            items = list(self._data.items())
            dead = [k for k, (_, exp) in items if exp is not None and exp <= now]
            for key in dead:
                del self._data[key]
            self._counts.evicted_expired += len(dead)
            return len(dead)

    # -- counts ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._data)

    @property
    def evictions(self) -> int:
        """Entries removed to respect ``maxsize``."""
        return self._counts.evicted_size

    @property
    def expirations(self) -> int:
        """Entries dropped because their TTL had passed."""
        return self._counts.evicted_expired

    def _metric_size(self) -> int:
        return len(self._data)

    if not _GIL:  # free-threaded build: nothing is atomic without the lock
        get = _get_locked  # type: ignore[assignment]

    def _metric_capacity(self) -> int:
        return self.maxsize

    def __repr__(self) -> str:
        return (
            f"Cache(name={self.name!r}, maxsize={self.maxsize}, ttl={self.ttl}, "
            f"size={len(self)}, hit_rate={self.hit_rate:.3f})"
        )
