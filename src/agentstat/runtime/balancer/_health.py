"""Health: ejection after consecutive failures, cooldown and half-open recovery, probes.

``max_failures`` consecutive failures eject an instance for ``cooldown`` seconds;
afterwards it is half-open (one more failure ejects it again, one success heals it). An
optional ``probe(instance) -> bool`` (sync or async) run every ``probe_interval`` by
:meth:`_Health.start_health_checks` ejects instances it fails and restores those it
passes. When the last healthy instance of a pool goes, its waiters fail at once.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from agentstat._threads import daemon_thread
from agentstat.runtime.balancer._instance import (
    AgentInstance,
    BalancerError,
    NoHealthyInstanceError,
)

if TYPE_CHECKING:
    from agentstat.runtime.balancer._pool import _Pool

_logger = logging.getLogger("agentstat")

Probe = Callable[[AgentInstance], bool | Awaitable[bool]]


class _Health:
    """Ejection, recovery and probes (a part of :class:`LoadBalancer`)."""

    max_failures: int
    cooldown: float
    probe: Probe | None
    probe_interval: float
    _clock: Callable[[], float]
    _lock: threading.Lock
    _pools: dict[str, _Pool]
    _seq: Iterator[int]
    _stop_checks: Callable[[], None] | None

    if TYPE_CHECKING:

        def _pool(self, agent_type: str) -> _Pool: ...
        def _update(self, pool: _Pool, instance: AgentInstance) -> None: ...
        def _reweigh(self, pool: _Pool) -> None: ...
        def _dispatch(self, pool: _Pool) -> None: ...
        def _fail_waiters(self, pool: _Pool, error: BalancerError) -> None: ...

    # -- state changes (under the lock) ------------------------------------------------

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

    # -- public --------------------------------------------------------------------------

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

        daemon_thread(run, "agentstat-probe").start()
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
