"""The :class:`LoadBalancer`: membership here; selection, leases and health in their
own modules (:mod:`._strategies`, :mod:`._leases`, :mod:`._health`)."""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Callable
from itertools import count

from agentstat.runtime.balancer import _metrics
from agentstat.runtime.balancer._health import Probe, _Health
from agentstat.runtime.balancer._instance import AgentInstance, Strategy, UnknownPoolError
from agentstat.runtime.balancer._leases import _Leasing
from agentstat.runtime.balancer._pool import _Pool
from agentstat.runtime.balancer._strategies import _Selection


class LoadBalancer(_Leasing, _Health, _Selection):
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
        rng: random.Random | None = None,
    ) -> None:
        """``rng`` draws the weighted and power-of-two choices (pass a seeded
        ``random.Random`` for a repeatable sequence)."""
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
        self._random = rng if rng is not None else random.Random()
        self._next = self._selector()
        self._stop_checks: Callable[[], None] | None = None
        self._round_robin = self.strategy is Strategy.ROUND_ROBIN
        self._least_loaded = self.strategy is Strategy.LEAST_LOADED

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
            _metrics.activate(instance, pool.name)
            instance._balancer = weakref.ref(self)
            pool.instances[instance.id] = instance
            if instance.healthy:
                pool.healthy_count += 1
                self._add_weight(pool, instance)
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
            _metrics.deactivate(instance)
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

    def rejections(self, agent_type: str) -> int:
        """Acquisitions this balancer refused in the pool (no capacity in time, or no
        healthy instance); 0 for a pool it never saw."""
        with self._lock:
            pool = self._pools.get(agent_type)
            return pool.counts.rejections if pool is not None else 0

    def waiting(self, agent_type: str) -> int:
        """Callers now waiting for capacity in the pool (given up waits are not counted)."""
        with self._lock:
            pool = self._pools.get(agent_type)
            if pool is None:
                return 0
            return sum(1 for waiter in pool.waiters if waiter.waiting)

    def _pool(self, agent_type: str) -> _Pool:
        pool = self._pools.get(agent_type)
        if pool is None or not pool.instances:
            raise UnknownPoolError(f"no instance is registered for agent type {agent_type!r}")
        return pool
