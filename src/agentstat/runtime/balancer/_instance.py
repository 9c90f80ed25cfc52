"""The balancer's public data types: strategies, errors and :class:`AgentInstance`."""

from __future__ import annotations

import weakref
from enum import StrEnum
from operator import attrgetter
from typing import TYPE_CHECKING

from agentstat.errors import AgentstatError

if TYPE_CHECKING:
    from agentstat._metrics.counts import InstanceCounts
    from agentstat.runtime.balancer._balancer import LoadBalancer


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
    do not set them. ``current_load``, ``max_capacity`` and ``is_healthy`` are older names
    for the same values.
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

    # Older names for the same values (read-only), as duck-typed balancers use them.
    pool = property(attrgetter("agent_type"), doc="The pool: ``agent_type``.")
    current_load = property(attrgetter("load"), doc="Requests in flight: ``load``.")
    max_capacity = property(attrgetter("capacity"), doc="``capacity``.")
    is_healthy = property(attrgetter("healthy"), doc="``healthy``.")

    @property
    def available_capacity(self) -> int:
        return max(0, self.capacity - self.load)

    @property
    def selections(self) -> int:
        """Times a balancer chose this instance (0 before it was first registered)."""
        return self._counts.selections if self._counts is not None else 0

    def _metric_state(self) -> tuple[int, int, bool]:
        return self.load, self.capacity, self.healthy

    def __repr__(self) -> str:
        return (
            f"AgentInstance({self.id!r}, {self.agent_type!r}, load={self.load}/{self.capacity}, "
            f"healthy={self.healthy})"
        )
