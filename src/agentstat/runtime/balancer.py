"""A load balancer for agent instances that waits, releases, ejects and counts.

Usage::

    from agentstat import AgentInstance, LoadBalancer, Strategy

    lb = LoadBalancer(strategy=Strategy.LEAST_LOADED)
    lb.register(AgentInstance("ml-1", "ml-engineer", capacity=5))
    lb.register(AgentInstance("ml-2", "ml-engineer", capacity=5, weight=2.0))

    async with lb.acquire("ml-engineer", timeout=2.0) as instance:   # or plain `with`
        await call_agent(instance.id)
    # released here, also on exceptions and cancellation; an exception counts as a
    # failure of the instance (5 in a row eject it for 30 s, then it is tried again)

    with lb.acquire("ml-engineer", block=False) as instance:
        if instance is None: ...       # only when asked for: no capacity right now

In async code use ``async with``: a plain ``with`` that has to wait blocks the thread.
When no healthy instance has capacity, ``acquire`` waits (FIFO) up to ``timeout`` seconds
and then raises :class:`NoCapacityError`; when every instance of the pool is ejected it
raises :class:`NoHealthyInstanceError` at once. Both count a rejection.

Strategies (each O(1) or O(log n) per acquisition, never a scan of the pool):

- ``ROUND_ROBIN``: a ring of instances with free capacity.
- ``LEAST_LOADED``: lowest ``load / capacity`` from a heap with lazy invalidation; ties go
  to the instance idle longest.
- ``WEIGHTED``: chance proportional to ``weight * free share``, as in the seed card, by
  sampling on static weights (bisect) and accepting with probability free share; after
  16 rejections (a nearly full pool) it falls back to power of two choices.
- ``POWER_OF_TWO``: the less loaded of two random instances with free capacity.

Health: ``max_failures`` consecutive failures eject an instance for ``cooldown`` seconds;
afterwards it is half-open (one more failure ejects it again, one success heals it). An
optional ``probe(instance) -> bool`` (sync or async) run every ``probe_interval`` by
:meth:`LoadBalancer.start_health_checks` ejects instances it fails and restores those it
passes.

Metrics: per instance ``agentstat.balancer.selections``, ``.instance.load``,
``.instance.capacity`` and ``.instance.healthy``; per pool ``agentstat.balancer.rejections``
and ``agentstat.balancer.wait.duration`` (only acquisitions that had to wait are
observed). Selection counts are integers bumped under the balancer's lock, read by
OpenTelemetry at collection time.

Why one long module: it moved here unchanged with the 0.2 layout; splitting it by
concern (strategies, health, waiting and leases, metrics) is tracked separately.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import math
import random
import threading
import time
import weakref
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum
from heapq import heappop, heapreplace
from itertools import accumulate, count
from typing import Any, Generic, Literal, TypeVar, overload

from agentstat._metrics.counts import REGISTRY, InstanceCounts, PoolCounts
from agentstat._metrics.store import STORE
from agentstat.errors import AgentstatError
from agentstat.semconv import BALANCER_WAIT

_logger = logging.getLogger("agentstat")

T = TypeVar("T")
Probe = Callable[["AgentInstance"], bool | Awaitable[bool]]

#: Exceptions that end a lease without saying anything about the instance.
_NEUTRAL = (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)
_WEIGHTED_TRIES = 16
_DEFAULT: Any = object()  # acquire(timeout=...) not given: the balancer's default_timeout
_new = object.__new__


class Strategy(StrEnum):
    """How an instance is chosen among those of a pool with free capacity."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    WEIGHTED = "weighted"
    POWER_OF_TWO = "power_of_two"


class BalancerError(AgentstatError):
    """Base class of the balancer's errors."""


class UnknownPoolError(BalancerError, LookupError):
    """No instance was ever registered for this pool (agent type)."""


class NoCapacityError(BalancerError, TimeoutError):
    """Every healthy instance stayed at capacity for the whole timeout."""


class NoHealthyInstanceError(BalancerError):
    """Every instance of the pool is ejected or failed its health probe."""


class AgentInstance:
    """One agent instance: ``id``, its pool ``agent_type``, ``capacity`` and ``weight``.

    ``load`` (requests in flight) and ``healthy`` are kept by the balancer; read them,
    do not set them. ``current_load``, ``max_capacity`` and ``is_healthy`` are the seed
    card's names for the same values.
    """

    __slots__ = (
        "__weakref__", "_balancer", "_counts", "_ejected_until", "_failures", "_in_ring",
        "_slot", "_version", "agent_type", "capacity", "healthy", "id", "load", "weight",
    )  # fmt: skip

    def __init__(self, id: str, agent_type: str, capacity: int = 10, weight: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError(f"instance {id!r}: capacity must be at least 1, got {capacity!r}")
        if not weight > 0:
            raise ValueError(f"instance {id!r}: weight must be positive, got {weight!r}")
        self.id = id
        self.agent_type = agent_type
        self.capacity = capacity
        self.weight = float(weight)
        self.load = 0
        self.healthy = True
        self._failures = 0
        self._ejected_until = 0.0
        self._slot = -1  # index in its pool's list of instances with free capacity
        self._in_ring = False
        self._version = 0
        self._counts: InstanceCounts | None = None  # .active: registered with a balancer
        self._balancer: weakref.ref[LoadBalancer] | None = None  # the last it was registered in

    @property
    def pool(self) -> str:
        return self.agent_type

    @property
    def current_load(self) -> int:
        return self.load

    @property
    def max_capacity(self) -> int:
        return self.capacity

    @property
    def is_healthy(self) -> bool:
        return self.healthy

    @property
    def available_capacity(self) -> int:
        return max(0, self.capacity - self.load)

    def _metric_state(self) -> tuple[int, int, bool]:
        return self.load, self.capacity, self.healthy

    def __repr__(self) -> str:
        return (
            f"AgentInstance({self.id!r}, {self.agent_type!r}, load={self.load}/{self.capacity}, "
            f"healthy={self.healthy})"
        )


class _Waiter:
    __slots__ = ("cancelled", "error", "event", "future", "instance", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.future: asyncio.Future[AgentInstance] | None = loop.create_future() if loop else None
        self.event = None if loop else threading.Event()
        self.instance: AgentInstance | None = None
        self.error: BaseException | None = None
        self.cancelled = False


class _Pool:
    """Instances of one agent type and the per-strategy indexes over them."""

    def __init__(self, name: str, owner: LoadBalancer) -> None:
        self.name = name
        self.instances: dict[str, AgentInstance] = {}
        self.available: list[AgentInstance] = []  # healthy, load < capacity; swap-remove
        self.healthy_count = 0
        self.ring: deque[AgentInstance] = deque()  # ROUND_ROBIN
        self.heap: list[tuple[float, int, int, AgentInstance]] = []  # LEAST_LOADED
        self.healthy: list[AgentInstance] = []  # WEIGHTED: aligned with cumulative
        self.cumulative: list[float] = []
        self.ejected: list[tuple[float, int, AgentInstance]] = []  # (until, seq, instance)
        self.waiters: deque[_Waiter] = deque()
        self.counts = PoolCounts(name)
        REGISTRY.register(self.counts, owner)
        self.wait = STORE.histogram(BALANCER_WAIT).series((self.counts.pool,))


class Lease(Generic[T]):
    """What :meth:`LoadBalancer.acquire` returns: a sync and async context manager."""

    __slots__ = ("_block", "_lb", "_pool", "_timeout", "instance")

    def __init__(self, lb: LoadBalancer, pool: str, timeout: float | None, block: bool) -> None:
        # LoadBalancer.acquire sets these same slots itself, without calling __init__
        self._lb = lb
        self._pool = pool
        self._timeout = timeout
        self._block = block
        self.instance: AgentInstance | None = None

    def __enter__(self) -> T:
        if self.instance is not None:
            raise RuntimeError("this lease is already held; call acquire() again")
        instance = self.instance = self._lb._acquire_sync(self._pool, self._timeout, self._block)
        return instance  # type: ignore[return-value]

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        instance = self.instance
        if instance is not None:
            self.instance = None
            lb = self._lb
            # a clean exit is a success; only an exception needs classifying
            lb._release(instance, False if exc is None else lb._failed(exc))

    async def __aenter__(self) -> T:
        if self.instance is not None:
            raise RuntimeError("this lease is already held; call acquire() again")
        instance = await self._lb._acquire_async(self._pool, self._timeout, self._block)
        self.instance = instance
        return instance  # type: ignore[return-value]

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class LoadBalancer:
    """Pools of :class:`AgentInstance` by agent type, one strategy for all pools."""

    def __init__(
        self,
        strategy: Strategy | str = Strategy.LEAST_LOADED,
        *,
        max_failures: int = 5,
        cooldown: float = 30.0,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        probe: Probe | None = None,
        probe_interval: float = 10.0,
        default_timeout: float | None = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.strategy = Strategy(strategy)
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures!r}")
        self.max_failures = max_failures
        self.cooldown = cooldown
        self.failure_exceptions = failure_exceptions
        self.probe = probe
        self.probe_interval = probe_interval
        self.default_timeout = default_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._seq = count()
        self._random = random.Random()
        # choose + take in one call: the fast path of every acquisition
        self._next = {
            Strategy.ROUND_ROBIN: self._next_round_robin,
            Strategy.LEAST_LOADED: self._next_least_loaded,
            Strategy.WEIGHTED: self._next_weighted,
            Strategy.POWER_OF_TWO: self._next_two_choices,
        }[self.strategy]
        self._stop_checks: Callable[[], None] | None = None
        self._round_robin = self.strategy is Strategy.ROUND_ROBIN
        self._least_loaded = self.strategy is Strategy.LEAST_LOADED

    # -- membership ----------------------------------------------------------------

    def register(self, instance: AgentInstance) -> AgentInstance:
        """Add ``instance`` to the pool named by its ``agent_type``."""
        with self._lock:
            pool = self._pools.get(instance.agent_type)
            if pool is not None and instance.id in pool.instances:
                raise ValueError(f"pool {pool.name!r} already has an instance {instance.id!r}")
            previous = instance._balancer() if instance._balancer is not None else None
            counts = instance._counts
            if counts is not None and counts.active:
                where = "this balancer" if previous is self else "another balancer"
                raise ValueError(
                    f"instance {instance.id!r} is still registered with {where}; "
                    "deregister it there first"
                )
            if instance.load and previous is not None and previous is not self:
                # its leases would be released to the other balancer, under another lock
                raise ValueError(
                    f"instance {instance.id!r} has {instance.load} requests in flight from "
                    "another balancer; release them before registering it here"
                )
            if pool is None:
                pool = self._pools[instance.agent_type] = _Pool(instance.agent_type, self)
            if counts is None or not counts.labels_match(pool.name, instance.id):
                counts = instance._counts = InstanceCounts(pool.name, instance.id)
                REGISTRY.register(counts, instance)
            counts.active = True  # registered again: its selections go on from where they were
            instance._balancer = weakref.ref(self)
            pool.instances[instance.id] = instance
            if instance.healthy:
                pool.healthy_count += 1
                if self.strategy is Strategy.WEIGHTED:  # O(1) append, not a rebuild
                    total = pool.cumulative[-1] if pool.cumulative else 0.0
                    pool.healthy.append(instance)
                    pool.cumulative.append(total + instance.weight)
            self._update(pool, instance)
            self._dispatch(pool)
        return instance

    def deregister(self, agent_type: str, instance_id: str) -> AgentInstance:
        """Remove an instance; requests in flight on it may still be released."""
        with self._lock:
            pool = self._pool(agent_type)
            instance = pool.instances.pop(instance_id, None)
            if instance is None:
                raise LookupError(f"pool {agent_type!r} has no instance {instance_id!r}")
            if instance.healthy:
                pool.healthy_count -= 1
            # Per-balancer state kept on the instance, reset so that another balancer (or
            # this one, later) can take it: its slot in `available` (-1 = none), its place
            # in the round-robin ring. `_version` is bumped, not reset: this balancer's
            # heap may still hold entries for it, and only a version above all of theirs
            # keeps them stale wherever it is registered next.
            self._unavail(pool, instance)
            if instance._in_ring:
                pool.ring.remove(instance)  # O(n), on deregistration only
                instance._in_ring = False
            instance._version += 1
            assert instance._counts is not None
            # Its selections stay reported (monotonic); its gauges stop until registered.
            instance._counts.active = False
            self._reweigh(pool)
            if pool.healthy_count == 0:
                self._fail_waiters(pool, self._no_healthy(pool))
            return instance

    def instances(self, agent_type: str) -> list[AgentInstance]:
        with self._lock:
            return list(self._pool(agent_type).instances.values())

    def pools(self) -> list[str]:
        with self._lock:
            return list(self._pools)

    # -- acquiring -----------------------------------------------------------------

    @overload
    def acquire(
        self, agent_type: str, timeout: float | None = ..., *, block: Literal[True] = ...
    ) -> Lease[AgentInstance]: ...
    @overload
    def acquire(
        self, agent_type: str, timeout: float | None = ..., *, block: Literal[False]
    ) -> Lease[AgentInstance | None]: ...

    def acquire(
        self, agent_type: str, timeout: Any = _DEFAULT, *, block: bool = True
    ) -> Lease[Any]:
        """A lease on an instance of ``agent_type``, for ``with`` or ``async with``.

        ``timeout`` seconds to wait for capacity (``None``: forever; default: the
        balancer's ``default_timeout``). ``block=False`` yields None instead of waiting.
        """
        if timeout is _DEFAULT:
            timeout = self.default_timeout
        # Lease.__init__ inlined: no second Python frame on every acquisition (~35 ns)
        lease: Lease[Any] = _new(Lease)
        lease._lb = self
        lease._pool = agent_type
        lease._timeout = timeout
        lease._block = block
        lease.instance = None
        return lease

    def try_acquire(self, agent_type: str) -> AgentInstance | None:
        """An instance with capacity now, or None (a counted rejection). Call :meth:`release`."""
        return self._acquire_sync(agent_type, 0.0, False)

    def release(self, instance: AgentInstance, *, failed: bool | None = None) -> None:
        """Give back one unit of ``instance``'s capacity.

        ``failed=True`` counts a failure toward ejection, ``False`` a success (clears the
        failure streak), ``None`` neither (a cancellation).
        """
        self._release(instance, failed)

    def _release(self, instance: AgentInstance, failed: bool | None) -> None:
        lock = self._lock
        lock.acquire()  # acquire/try/finally: half the cost of `with lock` on 3.11
        try:
            load = instance.load
            if load <= 0:
                raise ValueError(f"instance {instance.id!r} released more often than acquired")
            instance.load = load - 1
            pool = self._pools.get(instance.agent_type)
            if pool is None or pool.instances.get(instance.id) is not instance:
                return  # deregistered meanwhile
            if failed:
                instance._failures += 1
                if instance.healthy and instance._failures >= self.max_failures:
                    self._eject(pool, instance, self._clock() + self.cooldown)
                elif instance._slot < 0 or self._least_loaded:
                    self._update(pool, instance)
            else:
                if failed is not None:
                    instance._failures = 0
                # Still available (so healthy, below capacity and in the ring): only
                # least loaded has something to re-index, the instance's heap key.
                if instance._slot < 0 or self._least_loaded:
                    self._update(pool, instance)
            if pool.waiters:
                self._dispatch(pool)
        finally:
            lock.release()

    def _failed(self, exc: BaseException | None) -> bool | None:
        if exc is None:
            return False
        if isinstance(exc, _NEUTRAL) or not isinstance(exc, self.failure_exceptions):
            return None
        return True

    def _pool(self, agent_type: str) -> _Pool:
        pool = self._pools.get(agent_type)
        if pool is None or not pool.instances:
            raise UnknownPoolError(f"no instance is registered for agent type {agent_type!r}")
        return pool

    def _take_now(self, agent_type: str, block: bool) -> tuple[_Pool, AgentInstance | None]:
        """Under the lock: an instance now, or (pool, None); raises if none can come."""
        pool = self._pool(agent_type)
        if pool.ejected and pool.ejected[0][0] <= self._clock():
            self._recover_due(pool)
        if pool.waiters:
            self._dispatch(pool)  # also drops waiters that gave up
        if pool.available and not pool.waiters:
            return pool, self._next(pool)
        if pool.healthy_count == 0:
            pool.counts.rejections += 1
            raise self._no_healthy(pool)
        if not block:
            pool.counts.rejections += 1
        return pool, None

    def _acquire_sync(
        self, agent_type: str, timeout: float | None, block: bool
    ) -> AgentInstance | None:
        lock = self._lock
        lock.acquire()  # acquire/try/finally: half the cost of `with lock` on 3.11
        try:
            pool = self._pools.get(agent_type)
            if (
                pool is not None
                and pool.available
                and not pool.waiters
                and (not pool.ejected or pool.ejected[0][0] > self._clock())
            ):  # the common case, exactly what _take_now would do
                return self._next(pool)
            pool, instance = self._take_now(agent_type, block)
            if instance is not None or not block:
                return instance
            waiter = _Waiter()
            pool.waiters.append(waiter)
        finally:
            lock.release()
        start = time.perf_counter()
        assert waiter.event is not None
        waiter.event.wait(None if timeout is None else max(timeout, 0.0))
        pool.wait.observe(time.perf_counter() - start)
        with self._lock:
            if waiter.instance is not None:
                return waiter.instance
            waiter.cancelled = True
            pool.counts.rejections += 1
            if waiter.error is not None:
                raise waiter.error
        raise self._no_capacity(pool, timeout)

    async def _acquire_async(
        self, agent_type: str, timeout: float | None, block: bool
    ) -> AgentInstance | None:
        with self._lock:
            pool, instance = self._take_now(agent_type, block)
            if instance is not None or not block:
                return instance
            waiter = _Waiter(asyncio.get_running_loop())
            pool.waiters.append(waiter)
        future = waiter.future
        assert future is not None
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                instance = await future
        except BaseException as exc:
            pool.wait.observe(time.perf_counter() - start)
            with self._lock:
                waiter.cancelled = True
                granted = (
                    future.result()
                    if future.done() and not future.cancelled() and future.exception() is None
                    else None
                )
                if granted is not None:  # handed to us just as we were cancelled
                    self._release_locked(granted)
                if isinstance(exc, TimeoutError) and not isinstance(exc, BalancerError):
                    pool.counts.rejections += 1
                    raise self._no_capacity(pool, timeout) from None
                if isinstance(exc, BalancerError):
                    pool.counts.rejections += 1
            raise
        pool.wait.observe(time.perf_counter() - start)
        return instance

    def _release_locked(self, instance: AgentInstance) -> None:
        instance.load -= 1
        pool = self._pools.get(instance.agent_type)
        if pool is not None and pool.instances.get(instance.id) is instance:
            self._update(pool, instance)
            self._dispatch(pool)

    def _resolve(self, waiter: _Waiter, instance: AgentInstance) -> None:
        """In the waiter's event loop: hand over, or give back if it stopped waiting."""
        assert waiter.future is not None
        if waiter.future.done():
            with self._lock:
                self._release_locked(instance)
        else:
            waiter.future.set_result(instance)

    def _grant(self, waiter: _Waiter, instance: AgentInstance) -> None:
        if waiter.event is not None:
            waiter.instance = instance
            waiter.event.set()
        elif waiter.thread == threading.get_ident():
            assert waiter.future is not None
            waiter.future.set_result(instance)
        else:
            assert waiter.loop is not None
            try:
                waiter.loop.call_soon_threadsafe(self._resolve, waiter, instance)
            except RuntimeError:  # its loop is closed
                self._release_locked(instance)

    def _dispatch(self, pool: _Pool) -> None:
        """Hand free capacity to waiters, oldest first. Under the lock."""
        while pool.waiters and pool.available:
            waiter = pool.waiters.popleft()
            if waiter.cancelled or (waiter.future is not None and waiter.future.done()):
                continue
            self._grant(waiter, self._next(pool))

    def _fail_waiters(self, pool: _Pool, error: BalancerError) -> None:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if waiter.event is not None:
                waiter.error = error
                waiter.event.set()
            elif waiter.future is not None and not waiter.future.done():
                if waiter.thread == threading.get_ident():
                    waiter.future.set_exception(error)
                elif waiter.loop is not None and not waiter.loop.is_closed():
                    waiter.loop.call_soon_threadsafe(_set_exception, waiter.future, error)

    def _no_healthy(self, pool: _Pool) -> NoHealthyInstanceError:
        if not pool.instances:
            return NoHealthyInstanceError(f"pool {pool.name!r} has no instances left")
        now = self._clock()
        upcoming = [until for until, _, inst in pool.ejected if inst._ejected_until == until]
        retry = f"; the next is retried in {min(upcoming) - now:.1f} s" if upcoming else ""
        return NoHealthyInstanceError(
            f"pool {pool.name!r}: all {len(pool.instances)} instances are ejected or "
            f"unhealthy{retry}"
        )

    def _no_capacity(self, pool: _Pool, timeout: float | None) -> NoCapacityError:
        return NoCapacityError(
            f"pool {pool.name!r}: no healthy instance had free capacity within {timeout} s "
            f"({pool.healthy_count} healthy of {len(pool.instances)}, "
            f"{sum(i.load for i in pool.instances.values())} requests in flight)"
        )

    # -- bookkeeping (all under the lock) ----------------------------------------------

    def _update(self, pool: _Pool, instance: AgentInstance) -> None:
        """Re-index ``instance`` after its load or health changed."""
        if instance.healthy and instance.load < instance.capacity:
            if instance._slot < 0:
                instance._slot = len(pool.available)
                pool.available.append(instance)
            if self._round_robin:
                if not instance._in_ring:
                    instance._in_ring = True
                    pool.ring.append(instance)
            elif self._least_loaded:
                instance._version += 1
                entry = (
                    instance.load / instance.capacity,
                    next(self._seq),
                    instance._version,
                    instance,
                )
                heap = pool.heap
                if heap and heap[0][3] is instance:  # just selected: replace, one sift
                    heapq.heapreplace(heap, entry)
                else:  # its older entry stays behind, stale, until it surfaces
                    heapq.heappush(heap, entry)
                    if len(heap) > 4 * len(pool.instances) + 64:
                        self._compact_heap(pool)
        else:
            self._unavail(pool, instance)
            instance._version += 1

    def _unavail(self, pool: _Pool, instance: AgentInstance) -> None:
        slot = instance._slot
        if slot < 0:
            return
        last = pool.available.pop()
        if last is not instance:
            pool.available[slot] = last
            last._slot = slot
        instance._slot = -1

    def _compact_heap(self, pool: _Pool) -> None:
        """Drop stale entries (one O(n) pass every ~3n releases: amortised O(1))."""
        heap = [e for e in pool.heap if e[2] == e[3]._version and e[3]._slot >= 0]
        heapq.heapify(heap)
        pool.heap = heap

    def _reweigh(self, pool: _Pool) -> None:
        if self.strategy is Strategy.WEIGHTED:
            pool.healthy = [i for i in pool.instances.values() if i.healthy]
            pool.cumulative = list(accumulate(i.weight for i in pool.healthy))

    # -- selection + taking (under the lock; pool.available is not empty) --------------
    #
    # Each _next_* chooses an instance, takes one unit of it (load, selection count) and
    # re-indexes it: what _update does after a take, specialised per strategy. A chosen
    # instance is available, so it is healthy and below capacity before the take.

    def _next_round_robin(self, pool: _Pool) -> AgentInstance:
        ring = pool.ring
        while True:
            instance = ring.popleft()
            if instance._slot >= 0:
                break
            instance._in_ring = False  # saturated or ejected: back in when it frees up
        ring.append(instance)
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        if load >= instance.capacity:
            self._unavail(pool, instance)
            instance._version += 1
        return instance

    def _next_least_loaded(self, pool: _Pool) -> AgentInstance:
        heap = pool.heap
        while True:
            _, _, version, instance = heap[0]
            if version == instance._version and instance._slot >= 0:
                break
            heappop(heap)
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        version = instance._version = version + 1
        capacity = instance.capacity
        if load < capacity:  # its entry is the top: replace it, one sift
            heapreplace(heap, (load / capacity, next(self._seq), version, instance))
        else:  # the top entry is stale now; the next selection pops it
            self._unavail(pool, instance)
        return instance

    def _next_two_choices(self, pool: _Pool) -> AgentInstance:
        instance = self._two_choices(pool)
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        if load >= instance.capacity:
            self._unavail(pool, instance)
            instance._version += 1
        return instance

    def _next_weighted(self, pool: _Pool) -> AgentInstance:
        healthy, cumulative = pool.healthy, pool.cumulative
        total = cumulative[-1]
        rand = self._random.random
        for _ in range(_WEIGHTED_TRIES):
            try:
                instance = healthy[bisect_right(cumulative, rand() * total)]
            except IndexError:  # rand() * total rounded up to total
                instance = healthy[-1]
            capacity = instance.capacity
            if instance._slot >= 0 and rand() * capacity < capacity - instance.load:
                break
        else:
            instance = self._two_choices(pool)
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        if load >= instance.capacity:
            self._unavail(pool, instance)
            instance._version += 1
        return instance

    def _two_choices(self, pool: _Pool) -> AgentInstance:
        available = pool.available
        n = len(available)
        rand = self._random.random
        first = available[int(rand() * n)]
        if n == 1:
            return first
        second = available[int(rand() * n)]
        if second.load * first.capacity < first.load * second.capacity:
            return second
        return first

    # -- health ------------------------------------------------------------------------

    def _eject(self, pool: _Pool, instance: AgentInstance, until: float) -> None:
        if instance.healthy:
            instance.healthy = False
            pool.healthy_count -= 1
        instance._ejected_until = until
        if until != math.inf:
            heapq.heappush(pool.ejected, (until, next(self._seq), instance))
        self._update(pool, instance)
        self._reweigh(pool)
        _logger.warning("agentstat: instance %r of pool %r ejected", instance.id, pool.name)
        if pool.healthy_count == 0:
            self._fail_waiters(pool, self._no_healthy(pool))

    def _restore(self, pool: _Pool, instance: AgentInstance, failures: int) -> None:
        instance._failures = failures
        if not instance.healthy:
            instance.healthy = True
            pool.healthy_count += 1
            self._update(pool, instance)
            self._reweigh(pool)
            self._dispatch(pool)

    def _recover_due(self, pool: _Pool) -> None:
        now = self._clock()
        while pool.ejected and pool.ejected[0][0] <= now:
            until, _, instance = heapq.heappop(pool.ejected)
            if pool.instances.get(instance.id) is not instance:
                continue  # deregistered while ejected: it must not come back
            if instance._ejected_until == until and not instance.healthy:
                # half-open: one more failure ejects it again
                self._restore(pool, instance, self.max_failures - 1)

    def eject(self, agent_type: str, instance_id: str, seconds: float | None = None) -> None:
        """Take an instance out of rotation (``None``: until restored or a probe passes)."""
        with self._lock:
            pool = self._pool(agent_type)
            instance = pool.instances[instance_id]
            self._eject(pool, instance, math.inf if seconds is None else self._clock() + seconds)

    def restore(self, agent_type: str, instance_id: str) -> None:
        """Put an ejected instance back into rotation now."""
        with self._lock:
            pool = self._pool(agent_type)
            self._restore(pool, pool.instances[instance_id], 0)

    def _apply_probe(self, instance: AgentInstance, ok: bool) -> None:
        with self._lock:
            pool = self._pools.get(instance.agent_type)
            if pool is None or pool.instances.get(instance.id) is not instance:
                return
            if ok:
                self._restore(pool, instance, 0)
            elif instance.healthy:
                self._eject(pool, instance, math.inf)

    def _all_instances(self) -> list[AgentInstance]:
        with self._lock:
            return [i for pool in self._pools.values() for i in pool.instances.values()]

    def check_health(self) -> None:
        """Run the (sync) probe once on every instance and apply the results."""
        if self.probe is None:
            raise ValueError("this balancer has no probe")
        for instance in self._all_instances():
            try:
                result = self.probe(instance)
                if inspect.isawaitable(result):
                    raise TypeError("the probe is async: use `await lb.acheck_health()`")
                ok = bool(result)
            except TypeError:
                raise
            except Exception:
                _logger.debug("agentstat: probe of %r failed", instance.id, exc_info=True)
                ok = False
            self._apply_probe(instance, ok)

    async def acheck_health(self) -> None:
        """Run the probe (sync or async) once on every instance, concurrently."""
        if self.probe is None:
            raise ValueError("this balancer has no probe")
        probe = self.probe

        async def one(instance: AgentInstance) -> None:
            try:
                result = probe(instance)
                ok = bool(await result) if inspect.isawaitable(result) else bool(result)
            except Exception:
                _logger.debug("agentstat: probe of %r failed", instance.id, exc_info=True)
                ok = False
            self._apply_probe(instance, ok)

        await asyncio.gather(*(one(i) for i in self._all_instances()))

    def start_health_checks(self) -> None:
        """Probe every ``probe_interval`` s: in the running loop if the probe is async,
        else in a daemon thread. Stopped by :meth:`close`."""
        if self.probe is None:
            raise ValueError("this balancer has no probe")
        self.close()
        if inspect.iscoroutinefunction(self.probe):
            task = asyncio.get_running_loop().create_task(self._probe_loop())
            self._stop_checks = task.cancel
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(self.probe_interval):
                try:
                    self.check_health()
                except Exception:
                    _logger.exception("agentstat: health check failed")

        threading.Thread(target=run, name="agentstat-probe", daemon=True).start()
        self._stop_checks = stop.set

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.acheck_health()
            except Exception:
                _logger.exception("agentstat: health check failed")

    def close(self) -> None:
        """Stop the health checks started by :meth:`start_health_checks`."""
        stop, self._stop_checks = self._stop_checks, None
        if stop is not None:
            stop()


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


__all__ = [
    "AgentInstance",
    "BalancerError",
    "Lease",
    "LoadBalancer",
    "NoCapacityError",
    "NoHealthyInstanceError",
    "Strategy",
    "UnknownPoolError",
]
