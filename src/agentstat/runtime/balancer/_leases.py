"""Leases and waiting: acquire, release, FIFO waiters, and giving up without leaking.

A waiter that stops waiting for any reason — timeout, ``asyncio`` cancellation,
``KeyboardInterrupt`` or another exception raised by a signal handler while a thread
blocks — leaves the queue at once, and an instance handed to it in the meantime is
given back. A :class:`Lease` records its instance before ``acquire`` returns, so an
interruption between the grant and the ``with`` body gives the instance back too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from agentstat.runtime.balancer._instance import AgentInstance, BalancerError, NoCapacityError

if TYPE_CHECKING:
    from agentstat.runtime.balancer._balancer import LoadBalancer
    from agentstat.runtime.balancer._pool import _Pool

T = TypeVar("T")

#: Exceptions that end a lease without saying anything about the instance.
_NEUTRAL = (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)
_DEFAULT: Any = object()  # acquire(timeout=...) not given: the balancer's default_timeout
_new = object.__new__


class _Waiter:
    __slots__ = ("cancelled", "error", "event", "future", "instance", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.future: asyncio.Future[AgentInstance] | None = loop.create_future() if loop else None
        self.event = None if loop else threading.Event()
        self.instance: AgentInstance | None = None  # sync waiters: what was handed over
        self.error: BaseException | None = None
        self.cancelled = False

    @property
    def waiting(self) -> bool:
        """Still waiting: nothing handed over, failed or given up yet."""
        if self.future is not None:
            return not self.future.done()
        return self.instance is None and self.error is None and not self.cancelled


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
        try:
            # sets self.instance itself, under the balancer's lock
            lb = self._lb
            return lb._acquire_sync(self._pool, self._timeout, self._block, self)  # type: ignore[return-value]
        except BaseException:
            self._give_back()  # interrupted after the grant, before the `with` body
            raise

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
        try:
            lb = self._lb
            return await lb._acquire_async(self._pool, self._timeout, self._block, self)  # type: ignore[return-value]
        except BaseException:
            self._give_back()
            raise

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _give_back(self) -> None:
        instance, self.instance = self.instance, None
        if instance is not None:
            self._lb._release(instance, None)


class _Leasing:
    """Acquiring, waiting and releasing (a part of :class:`LoadBalancer`)."""

    default_timeout: float | None
    failure_exceptions: tuple[type[BaseException], ...]
    max_failures: int
    _clock: Callable[[], float]
    _lock: threading.Lock
    _pools: dict[str, _Pool]
    _least_loaded: bool
    _next: Callable[[_Pool], AgentInstance]

    if TYPE_CHECKING:

        def _pool(self, agent_type: str) -> _Pool: ...
        def _update(self, pool: _Pool, instance: AgentInstance) -> None: ...
        def _eject(self, pool: _Pool, instance: AgentInstance, until: float) -> None: ...
        def _recover_due(self, pool: _Pool) -> None: ...
        def _no_healthy(self, pool: _Pool) -> BalancerError: ...

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
        lease._lb = self  # type: ignore[assignment]
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
        self, agent_type: str, timeout: float | None, block: bool, lease: Lease[Any] | None = None
    ) -> AgentInstance | None:
        lock = self._lock
        waiter: _Waiter | None = None
        try:
            lock.acquire()  # acquire/try/finally: half the cost of `with lock` on 3.11
            try:
                pool = self._pools.get(agent_type)
                if (
                    pool is not None
                    and pool.available
                    and not pool.waiters
                    and (not pool.ejected or pool.ejected[0][0] > self._clock())
                ):  # the common case, exactly what _take_now would do
                    instance = self._next(pool)
                    if lease is not None:
                        lease.instance = instance
                    return instance
                pool, instance = self._take_now(agent_type, block)
                if instance is not None or not block:
                    if lease is not None:
                        lease.instance = instance
                    return instance
                waiter = _Waiter()
                pool.waiters.append(waiter)
            finally:
                lock.release()
            start = perf_counter()
            assert waiter.event is not None
            waiter.event.wait(None if timeout is None else max(timeout, 0.0))
            pool.wait.observe(perf_counter() - start)
            with lock:
                instance = waiter.instance
                if instance is not None:
                    if lease is not None:
                        lease.instance = instance
                    return instance
                waiter.cancelled = True
                self._unqueue(pool, waiter)
                pool.counts.rejections += 1
                error, waiter = waiter.error, None  # left the queue: nothing to abandon
            raise error if error is not None else self._no_capacity(pool, timeout)
        except BaseException:
            if waiter is not None:  # interrupted while waiting: leave, give back any grant
                self._abandon(pool, waiter, lease)
            raise

    def _abandon(self, pool: _Pool, waiter: _Waiter, lease: Lease[Any] | None) -> None:
        """A sync waiter stops waiting: out of the queue, and what it got goes back."""
        with self._lock:
            waiter.cancelled = True
            self._unqueue(pool, waiter)
            instance, waiter.instance = waiter.instance, None
            if instance is not None:
                if lease is not None and lease.instance is instance:
                    lease.instance = None
                self._release_locked(instance)

    @staticmethod
    def _unqueue(pool: _Pool, waiter: _Waiter) -> None:
        """Remove a waiter that gave up (O(waiters), only when one gives up)."""
        with contextlib.suppress(ValueError):  # already handed an instance or an error
            pool.waiters.remove(waiter)

    async def _acquire_async(
        self, agent_type: str, timeout: float | None, block: bool, lease: Lease[Any] | None = None
    ) -> AgentInstance | None:
        with self._lock:
            pool, instance = self._take_now(agent_type, block)
            if instance is not None or not block:
                if lease is not None:
                    lease.instance = instance
                return instance
            waiter = _Waiter(asyncio.get_running_loop())
            pool.waiters.append(waiter)
        future = waiter.future
        assert future is not None
        start = perf_counter()
        try:
            async with asyncio.timeout(timeout):
                instance = await future
        except BaseException as exc:
            pool.wait.observe(perf_counter() - start)
            with self._lock:
                waiter.cancelled = True
                self._unqueue(pool, waiter)
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
        pool.wait.observe(perf_counter() - start)
        if lease is not None:
            lease.instance = instance
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

    def _no_capacity(self, pool: _Pool, timeout: float | None) -> NoCapacityError:
        return NoCapacityError(
            f"pool {pool.name!r}: no healthy instance had free capacity within {timeout} s "
            f"({pool.healthy_count} healthy of {len(pool.instances)}, "
            f"{sum(i.load for i in pool.instances.values())} requests in flight)"
        )


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
