"""Old import path of the load balancer; it lives in :mod:`agentstat.runtime.balancer` now."""

from agentstat.runtime.balancer import (
    AgentInstance,
    BalancerError,
    Lease,
    LoadBalancer,
    NoCapacityError,
    NoHealthyInstanceError,
    Strategy,
    UnknownPoolError,
)

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
