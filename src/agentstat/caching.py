"""Caches that count themselves: LRU + TTL, tiered, and a single-flight decorator.

Usage::

    from agentstat import Cache, TieredCache, cached, MISSING

    answers = Cache(maxsize=10_000, ttl=300, name="answers")
    answers.put("q1", None)                     # None is a value like any other
    answers.get("q1")                           # -> None, counted as a hit
    answers.get("q2", MISSING) is MISSING       # -> True, counted as a miss
    found, value = answers.lookup("q1")         # -> (True, None)

    docs = TieredCache(name="docs")             # hot 100 / warm 500 / cold 2000 entries
    docs.put("k", "v", ttl=60)

    @cached(ttl=60, name="search")              # or cached(answers), or @cached
    async def search(query: str) -> list[str]: ...

Every cache reports ``agentstat.cache.lookups`` (hit/miss), ``agentstat.cache.evictions``
(size/expired), ``agentstat.cache.size`` and ``agentstat.cache.capacity`` under its
``name``; a tiered cache reports each tier (``hot``...) and the whole (tier ``all``).
Counting is a plain integer bump under the lock the cache takes anyway; OpenTelemetry
reads the integers at collection time (see :mod:`agentstat._runtime_metrics`).

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

import asyncio
import functools
import inspect
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, ParamSpec, TypeVar, overload

from agentstat._runtime_metrics import REGISTRY, CacheCounts, LookupCounts
from agentstat.semconv import TIER_ALL, TIER_NONE

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")

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
        REGISTRY.register(self._counts, self)

    # -- lookups ---------------------------------------------------------------------

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: R) -> V | R: ...

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


@dataclass(frozen=True)
class Tier:
    """One level of a :class:`TieredCache`: its label, size bound and TTL (seconds)."""

    name: str
    maxsize: int
    ttl: float | None = None


#: The seed card's layout: 100 entries for 5 min, 500 for 30 min, 2000 for 1 h.
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
        REGISTRY.register(self._counts, self)

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


# --------------------------------------------------------------------------- decorator


class _LeaderGone(Exception):
    """The computing caller was cancelled or interrupted; a waiter should compute."""


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


def _typed(value: Any) -> Any:
    # Tag every value with its type, recursively through tuples and frozensets, so that
    # 1, 1.0 and True (equal and equally hashed in Python) never share a key.
    if isinstance(value, tuple):
        return (type(value), tuple([_typed(v) for v in value]))
    if isinstance(value, frozenset):
        return (type(value), frozenset([_typed(v) for v in value]))
    return (type(value), value)


def _unhashable_error(func: Callable[..., Any], args: tuple, kwargs: dict) -> TypeError | None:
    for where, value in [*((f"argument {i}", a) for i, a in enumerate(args)),
                         *((f"argument {k!r}", v) for k, v in kwargs.items())]:  # fmt: skip
        try:
            hash(_typed(value))
        except TypeError:
            return TypeError(
                f"cached {func.__qualname__}(): {where} is an unhashable "
                f"{type(value).__name__}; pass key=... to cached() to build a hashable key"
            )
    return None


def cached(
    cache: Cache[Any, Any] | TieredCache[Any, Any] | Callable[..., Any] | None = None,
    *,
    maxsize: int = 1024,
    ttl: float | None = None,
    name: str | None = None,
    key: Callable[..., Hashable] | None = None,
) -> Any:
    """Cache a function's results, sync or async; concurrent misses compute once.

    ``cached(cache)`` uses an existing cache (it may be shared by several functions:
    keys include the function); ``cached(maxsize=..., ttl=..., name=...)`` makes one
    named after the function by default. Keys are the arguments tagged with their types
    (``f(1)`` and ``f(True)`` are different entries); positional and keyword spellings
    of one argument are different entries too. Unhashable arguments raise
    :class:`TypeError` unless ``key(*args, **kwargs)`` returns a hashable key.
    Exceptions are passed to every caller waiting on that computation but not cached.
    Methods work; the instance is part of the key (and kept alive by the cache).
    """
    if callable(cache) and not isinstance(cache, Cache | TieredCache):
        return cached()(cache)  # bare @cached

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        store: Any = cache
        if store is None:
            store = Cache(maxsize, ttl, name=name or f"{func.__module__}.{func.__qualname__}")
        entry_ttl = None if cache is None else ttl
        token = object()  # this function's part of every key
        lock = threading.Lock()

        def make_key(args: tuple, kwargs: dict) -> Hashable:
            if key is not None:
                return (token, key(*args, **kwargs))
            typed = tuple([_typed(a) for a in args])
            if kwargs:
                return (token, typed, tuple(sorted((k, _typed(v)) for k, v in kwargs.items())))
            return (token, typed)

        def first_lookup(k: Hashable, args: tuple, kwargs: dict) -> Any:
            try:
                return store.get(k, MISSING)
            except TypeError:
                error = None if key is not None else _unhashable_error(func, args, kwargs)
                if error is None:
                    raise
                raise error from None

        if inspect.iscoroutinefunction(func):
            flights: dict[tuple[Any, Hashable], asyncio.Future[Any]] = {}

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                k = make_key(args, kwargs)
                value = first_lookup(k, args, kwargs)
                if value is not MISSING:
                    return value
                loop = asyncio.get_running_loop()
                while True:
                    with lock:
                        value = store._peek(k)
                        if value is not MISSING:
                            return value
                        future = flights.get((loop, k))
                        if future is None:
                            future = flights[(loop, k)] = loop.create_future()
                            break
                    try:
                        return await asyncio.shield(future)
                    except _LeaderGone:
                        continue
                try:
                    result = await func(*args, **kwargs)  # type: ignore[misc]
                except Exception as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning
                    raise
                except BaseException:
                    future.set_exception(_LeaderGone())
                    future.exception()
                    raise
                else:
                    store.put(k, result, entry_ttl)
                    future.set_result(result)
                    return result
                finally:
                    with lock:
                        flights.pop((loop, k), None)

            async_wrapper.cache = store  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        sync_flights: dict[Hashable, _Flight] = {}

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = make_key(args, kwargs)
            value = first_lookup(k, args, kwargs)
            if value is not MISSING:
                return value
            while True:
                with lock:
                    value = store._peek(k)
                    if value is not MISSING:
                        return value
                    flight = sync_flights.get(k)
                    if flight is None:
                        flight = sync_flights[k] = _Flight()
                        break
                flight.done.wait()
                if isinstance(flight.error, _LeaderGone):
                    continue
                if flight.error is not None:
                    raise flight.error
                return flight.value
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                flight.error = exc
                raise
            except BaseException:
                flight.error = _LeaderGone()
                raise
            else:
                store.put(k, result, entry_ttl)
                flight.value = result
                return result
            finally:
                with lock:
                    sync_flights.pop(k, None)
                flight.done.set()

        wrapper.cache = store  # type: ignore[attr-defined]
        return wrapper

    return decorate


__all__ = ["DEFAULT_TIERS", "MISSING", "Cache", "Tier", "TieredCache", "cached"]
