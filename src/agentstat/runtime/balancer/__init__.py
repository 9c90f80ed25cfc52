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
- ``WEIGHTED``: chance proportional to ``weight * free share``, favouring free capacity, by
  sampling on static weights (bisect) and accepting with probability free share; after
  16 rejections (a nearly full pool) it falls back to power of two choices.
- ``POWER_OF_TWO``: the less loaded of two random instances with free capacity.

Health: ``max_failures`` consecutive failures eject an instance for ``cooldown`` seconds;
afterwards it is half-open (one more failure ejects it again, one success heals it). An
optional ``probe(instance) -> bool`` (sync or async) run every ``probe_interval`` by
:meth:`LoadBalancer.start_health_checks` ejects instances it fails and restores those it
passes.

Metrics: per instance ``agentstat.runtime.balancer.selections``, ``.instance.load``,
``.instance.capacity`` and ``.instance.healthy``; per pool ``agentstat.runtime.balancer.rejections``
and ``agentstat.runtime.balancer.wait.duration`` (only acquisitions that had to wait are
observed). Selection counts are integers bumped under the balancer's lock, read by
OpenTelemetry at collection time.
"""

from agentstat.runtime.balancer._balancer import LoadBalancer
from agentstat.runtime.balancer._health import Probe
from agentstat.runtime.balancer._instance import (
    AgentInstance,
    BalancerError,
    NoCapacityError,
    NoHealthyInstanceError,
    Strategy,
    UnknownPoolError,
)
from agentstat.runtime.balancer._leases import Lease

__all__ = [
    "AgentInstance",
    "BalancerError",
    "Lease",
    "LoadBalancer",
    "NoCapacityError",
    "NoHealthyInstanceError",
    "Probe",
    "Strategy",
    "UnknownPoolError",
]
