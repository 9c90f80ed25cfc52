"""Counts kept by the live caches, balancers and retries, read at collection time.

The OTel SDK's ``Counter.add`` costs 5–10 µs, more than a whole cache hit. So the hot
paths only bump plain integers on a small counts object (under the lock the object
already holds), and :meth:`CountsRegistry.collect` sums those integers when a reader collects;
the producer (:mod:`agentstat._metrics.producer`) turns them into OpenTelemetry sums and
gauges beside the histograms. Every counts object meets the :class:`Counts` protocol.

Every live object registers its counts object here; the registry holds the counts
strongly and the object weakly. When the object is garbage-collected its final counter
values are folded into per-attribute-set "retired" totals, so a counter never goes
down because a cache or an instance went away. Gauges (size, load, healthy) describe
live objects only and disappear with them.

Names are capped (:mod:`agentstat._metrics.caps`) when an object
registers (not per collection), so one name maps to one label value for the life of
the process and sums stay monotonic.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from agentstat._metrics.caps import CAPS
from agentstat._metrics.snapshot import Snapshot
from agentstat.semconv import (
    BALANCER_REJECTIONS,
    BALANCER_SELECTIONS,
    CACHE_CAPACITY,
    CACHE_EVICTIONS,
    CACHE_LOOKUPS,
    CACHE_NAME,
    CACHE_RESULT_HIT,
    CACHE_RESULT_MISS,
    CACHE_SIZE,
    CACHE_TIER,
    EVICTION_REASON_EXPIRED,
    EVICTION_REASON_SIZE,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    INSTANCE_ID,
    INSTANCE_LOAD,
    POOL_NAME,
    RETRY_ATTEMPTS,
    RETRY_GIVE_UPS,
    RETRY_TARGET,
    TIER_ALL,
    TIER_NONE,
    Instrument,
    MetricSpec,
)

#: (metric, attribute values in the order of ``metric.attributes``, value)
Point = tuple[MetricSpec, tuple[str, ...], float]


class Counts(Protocol):
    """What the registry reads from a counts object when a reader collects.

    Both methods may run on any thread at any time, so they read under the lock the
    object's owner mutates it with (or read plain integers, which the GIL keeps whole).
    In a forked child, a ``_lock`` attribute (``threading.Lock`` or ``RLock``) of the
    counts object and of its owner is replaced by a new one: another thread may have
    held it at the fork.
    """

    def counters(self) -> Iterable[Point]:
        """Every counter's current value: monotonic for the life of the object."""
        ...

    def gauges(self, owner: Any) -> Iterable[Point]:
        """Every gauge's current value, read from ``owner`` (the registered owner, alive;
        None when none was registered)."""
        ...


class CacheCounts:
    """Lookups and evictions of one cache (or one tier). Mutated under the owner's lock."""

    __slots__ = ("evicted_expired", "evicted_size", "hits", "misses", "name", "tier")

    def __init__(self, name: str, tier: str) -> None:
        self.name = CAPS.names(CACHE_NAME)(name)
        # "" (no tiers) and "all" are fixed labels; any other tier name is capped
        self.tier = tier if tier in (TIER_NONE, TIER_ALL) else CAPS.names(CACHE_TIER)(tier)
        self.hits = 0
        self.misses = 0
        self.evicted_size = 0
        self.evicted_expired = 0

    def counters(self) -> Iterator[Point]:
        n, t = self.name, self.tier
        yield CACHE_LOOKUPS, (n, t, CACHE_RESULT_HIT), self.hits
        yield CACHE_LOOKUPS, (n, t, CACHE_RESULT_MISS), self.misses
        if self.evicted_size:
            yield CACHE_EVICTIONS, (n, t, EVICTION_REASON_SIZE), self.evicted_size
        if self.evicted_expired:
            yield CACHE_EVICTIONS, (n, t, EVICTION_REASON_EXPIRED), self.evicted_expired

    def gauges(self, owner: Any) -> Iterator[Point]:
        size = getattr(owner, "_metric_size", None)
        capacity = getattr(owner, "_metric_capacity", None)
        values = (self.name, self.tier)
        if size is not None:
            yield CACHE_SIZE, values, size()
        if capacity is not None:
            yield CACHE_CAPACITY, values, capacity()


class LookupCounts(CacheCounts):
    """Lookups only (a tiered cache's whole-cache outcome; a user class with no size)."""

    __slots__ = ()

    def gauges(self, owner: Any) -> Iterator[Point]:
        return iter(())


class InstanceCounts:
    """Selections of one balanced instance; its load, capacity and health are gauges.

    ``active`` is False while the instance is not registered with a balancer: its
    selections (a counter) are still reported, its gauges are not, so an instance the
    user keeps after ``deregister`` neither looks healthy nor is counted twice when it
    is registered again (the balancer then reuses this object).
    """

    __slots__ = ("active", "instance", "pool", "selections")

    def __init__(self, pool: str, instance: str) -> None:
        self.pool = CAPS.names(POOL_NAME)(pool)
        self.instance = CAPS.names(INSTANCE_ID)(instance)
        self.selections = 0
        self.active = True

    def labels_match(self, pool: str, instance: str) -> bool:
        """Whether this object reports under the labels ``pool`` and ``instance`` get now."""
        same_pool = self.pool == CAPS.names(POOL_NAME)(pool)
        return same_pool and self.instance == CAPS.names(INSTANCE_ID)(instance)

    def counters(self) -> Iterator[Point]:
        yield BALANCER_SELECTIONS, (self.pool, self.instance), self.selections

    def gauges(self, owner: Any) -> Iterator[Point]:
        if not self.active:
            return
        values = (self.pool, self.instance)
        load, capacity, healthy = owner._metric_state()
        yield INSTANCE_LOAD, values, load
        yield INSTANCE_CAPACITY, values, capacity
        yield INSTANCE_HEALTHY, values, 1 if healthy else 0


class PoolCounts:
    """Rejected acquisitions of one pool of one balancer."""

    __slots__ = ("pool", "rejections")

    def __init__(self, pool: str) -> None:
        self.pool = CAPS.names(POOL_NAME)(pool)
        self.rejections = 0

    def counters(self) -> Iterator[Point]:
        yield BALANCER_REJECTIONS, (self.pool,), self.rejections

    def gauges(self, owner: Any) -> Iterator[Point]:
        return iter(())


class RetryCounts:
    """Retries and give-ups of one target by error type. Process-lifetime, never retired."""

    __slots__ = ("_lock", "attempts", "give_ups", "target")

    def __init__(self, target: str) -> None:
        self.target = CAPS.names(RETRY_TARGET)(target)
        self.attempts: dict[str, int] = {}
        self.give_ups: dict[str, int] = {}
        self._lock = threading.Lock()

    def attempt(self, error_type: str) -> None:
        error_type = CAPS.error_types(RETRY_TARGET)(error_type)
        with self._lock:
            self.attempts[error_type] = self.attempts.get(error_type, 0) + 1

    def give_up(self, error_type: str) -> None:
        error_type = CAPS.error_types(RETRY_TARGET)(error_type)
        with self._lock:
            self.give_ups[error_type] = self.give_ups.get(error_type, 0) + 1

    def counters(self) -> Iterator[Point]:
        with self._lock:
            attempts, give_ups = list(self.attempts.items()), list(self.give_ups.items())
        # A 0 without error type from the start, so `sum by (target)` reads 0 rather
        # than "No data" before the first retry (error types are not known in advance).
        yield RETRY_ATTEMPTS, (self.target, ""), 0
        yield RETRY_GIVE_UPS, (self.target, ""), 0
        for error_type, value in attempts:
            yield RETRY_ATTEMPTS, (self.target, error_type), value
        for error_type, value in give_ups:
            yield RETRY_GIVE_UPS, (self.target, error_type), value

    def gauges(self, owner: Any) -> Iterator[Point]:
        return iter(())


_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _renew_lock(obj: Any) -> None:
    """Give ``obj._lock`` (a counts object's, or its owner's: a Cache, a LoadBalancer) a
    new unheld lock of the same kind, in a forked child."""
    make = _LOCK_TYPES.get(type(getattr(obj, "_lock", None)))
    if make is not None:
        with contextlib.suppress(AttributeError, TypeError):
            obj._lock = make()


class CountsRegistry:
    """Every counts object of the process, its owner (weakly) and the retired totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, tuple[Counts, weakref.ref[Any] | None]] = {}
        self._retired: dict[tuple[str, tuple[str, ...]], float] = {}
        # Finalizers only queue the key: they can run inside any allocation, including
        # one made while this thread holds _lock, so they must not take it.
        self._dead: deque[int] = deque()

    def register(self, counts: Counts, owner: Any = None) -> None:
        """Report ``counts``; gauges read ``owner`` while it lives. Idempotent."""
        key = id(counts)
        ref = None
        if owner is not None:
            try:
                ref = weakref.ref(owner)
            except TypeError:  # not weak-referenceable: counters only, kept forever
                owner = None
        with self._lock:
            self._fold_dead()  # before reuse of a dead object's id
            if key in self._live:
                return
            self._live[key] = (counts, ref)
        if owner is not None:
            weakref.finalize(owner, self._retire, key)

    def _retire(self, key: int) -> None:
        self._dead.append(key)  # deque.append is atomic; folded in by _fold_dead

    def _fold_dead(self) -> None:
        """Move dead objects' final counter values into the retired totals. Under _lock."""
        while self._dead:
            entry = self._live.pop(self._dead.popleft(), None)
            if entry is None:
                continue
            for spec, values, value in entry[0].counters():
                slot = (spec.name, values)
                self._retired[slot] = self._retired.get(slot, 0) + value

    def collect(self, into: Snapshot) -> None:
        """Add every counter and gauge, summed over objects per attribute set, to ``into``."""
        with self._lock:
            self._fold_dead()
            live = list(self._live.values())
            retired = list(self._retired.items())
        counters, gauges = into.counters, into.gauges
        for key, value in retired:
            counters[key] = counters.get(key, 0) + value
        for counts, ref in live:
            for spec, values, value in counts.counters():
                key = (spec.name, values)
                counters[key] = counters.get(key, 0) + value
            owner = None
            if ref is not None:
                owner = ref()
                if owner is None:
                    continue  # died since the copy above; its finalizer is running
            for spec, values, value in counts.gauges(owner):
                gauge_key = (spec.name, values, "")
                gauges[gauge_key] = gauges.get(gauge_key, 0) + value

    def observe(self, spec: MetricSpec) -> dict[tuple[str, ...], float]:
        """Current value of ``spec`` per attribute-value tuple, summed over objects."""
        snapshot = Snapshot()
        self.collect(snapshot)
        if spec.instrument is Instrument.COUNTER:
            return {v: n for (name, v), n in snapshot.counters.items() if name == spec.name}
        return {v: n for (name, v, _), n in snapshot.gauges.items() if name == spec.name}

    def after_fork_in_child(self) -> None:
        """Start a forked child's counters at zero and give it unheld locks.

        The child's objects keep the values they had at the fork (a cache's hits); the
        parent reports those, so the child subtracts them: its retired totals start at
        minus every live counter. Locks the parent's other threads held at the fork
        would stay held forever in the child, so every lock here is new.
        """
        self._lock = threading.Lock()
        # Objects that died before the fork are still folded in later (their values
        # cancel against the baseline, which includes them).
        self._dead = deque(self._dead)
        baseline: dict[tuple[str, tuple[str, ...]], float] = {}
        for counts, ref in self._live.values():
            _renew_lock(counts)
            _renew_lock(ref() if ref is not None else None)
            for spec, values, value in counts.counters():
                key = (spec.name, values)
                baseline[key] = baseline.get(key, 0) - value
        self._retired = baseline


COUNTS = CountsRegistry()

_retry_lock = threading.Lock()
_retry_counts: dict[str, RetryCounts] = {}


def retry_counts(target: str) -> RetryCounts:
    """The one counts object of a retry target (shared by every function naming it)."""
    label = CAPS.names(RETRY_TARGET)(target)
    with _retry_lock:
        counts = _retry_counts.get(label)
        if counts is None:
            counts = _retry_counts[label] = RetryCounts(label)
            COUNTS.register(counts)
        return counts


def after_fork_in_child() -> None:
    """Called in a forked child (see :mod:`agentstat._metrics.store`)."""
    global _retry_lock
    _retry_lock = threading.Lock()
    COUNTS.after_fork_in_child()
