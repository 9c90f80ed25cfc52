"""agentstat: latency, success, cache and load metrics for AI agents, via OpenTelemetry.

Names are imported on first use, so ``import agentstat`` stays cheap for a host
application that only needs the instrumentor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentstat.version import __version__

if TYPE_CHECKING:
    from agentstat.balancer import (
        AgentInstance,
        BalancerError,
        Lease,
        LoadBalancer,
        NoCapacityError,
        NoHealthyInstanceError,
        Strategy,
        UnknownPoolError,
    )
    from agentstat.caching import DEFAULT_TIERS, MISSING, Cache, Tier, TieredCache, cached
    from agentstat.decorators import agent, tool
    from agentstat.errors import AgentstatError, ConfigError, TargetError
    from agentstat.exporter import MetricsServer, start_metrics_server
    from agentstat.instrumentation import AgentstatInstrumentor, instrument
    from agentstat.retry import Backoff, retry

_LAZY = {
    "AgentInstance": "agentstat.balancer",
    "BalancerError": "agentstat.balancer",
    "Lease": "agentstat.balancer",
    "LoadBalancer": "agentstat.balancer",
    "NoCapacityError": "agentstat.balancer",
    "NoHealthyInstanceError": "agentstat.balancer",
    "Strategy": "agentstat.balancer",
    "UnknownPoolError": "agentstat.balancer",
    "DEFAULT_TIERS": "agentstat.caching",
    "MISSING": "agentstat.caching",
    "Cache": "agentstat.caching",
    "Tier": "agentstat.caching",
    "TieredCache": "agentstat.caching",
    "cached": "agentstat.caching",
    "Backoff": "agentstat.retry",
    "retry": "agentstat.retry",
    "AgentstatInstrumentor": "agentstat.instrumentation",
    "instrument": "agentstat.instrumentation",
    "agent": "agentstat.decorators",
    "tool": "agentstat.decorators",
    "start_metrics_server": "agentstat.exporter",
    "MetricsServer": "agentstat.exporter",
    "AgentstatError": "agentstat.errors",
    "ConfigError": "agentstat.errors",
    "TargetError": "agentstat.errors",
}

__all__ = [
    "DEFAULT_TIERS",
    "MISSING",
    "AgentInstance",
    "AgentstatError",
    "AgentstatInstrumentor",
    "Backoff",
    "BalancerError",
    "Cache",
    "ConfigError",
    "Lease",
    "LoadBalancer",
    "MetricsServer",
    "NoCapacityError",
    "NoHealthyInstanceError",
    "Strategy",
    "TargetError",
    "Tier",
    "TieredCache",
    "UnknownPoolError",
    "__version__",
    "agent",
    "cached",
    "instrument",
    "retry",
    "start_metrics_server",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentstat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
