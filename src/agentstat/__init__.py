"""agentstat: latency, success, cache and load metrics for AI agents, via OpenTelemetry.

Names are imported on first use, so ``import agentstat`` stays cheap for a host
application that only needs the instrumentor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentstat.version import __version__

if TYPE_CHECKING:
    from agentstat.errors import AgentstatError, ConfigError, TargetError
    from agentstat.exporter import MetricsServer, start_metrics_server
    from agentstat.instrumentation import AgentstatInstrumentor, instrument
    from agentstat.instrumentation.decorators import agent, tool
    from agentstat.instrumentation.recording import record, timed
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
    from agentstat.runtime.cache import MISSING, Cache
    from agentstat.runtime.cached import cached
    from agentstat.runtime.retry import Backoff, retry
    from agentstat.runtime.tiered import DEFAULT_TIERS, Tier, TieredCache

_LAZY = {
    "AgentInstance": "agentstat.runtime.balancer",
    "BalancerError": "agentstat.runtime.balancer",
    "Lease": "agentstat.runtime.balancer",
    "LoadBalancer": "agentstat.runtime.balancer",
    "NoCapacityError": "agentstat.runtime.balancer",
    "NoHealthyInstanceError": "agentstat.runtime.balancer",
    "Strategy": "agentstat.runtime.balancer",
    "UnknownPoolError": "agentstat.runtime.balancer",
    "DEFAULT_TIERS": "agentstat.runtime.tiered",
    "MISSING": "agentstat.runtime.cache",
    "Cache": "agentstat.runtime.cache",
    "Tier": "agentstat.runtime.tiered",
    "TieredCache": "agentstat.runtime.tiered",
    "cached": "agentstat.runtime.cached",
    "Backoff": "agentstat.runtime.retry",
    "retry": "agentstat.runtime.retry",
    "AgentstatInstrumentor": "agentstat.instrumentation",
    "instrument": "agentstat.instrumentation",
    "agent": "agentstat.instrumentation.decorators",
    "tool": "agentstat.instrumentation.decorators",
    "record": "agentstat.instrumentation.recording",
    "timed": "agentstat.instrumentation.recording",
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
    "record",
    "retry",
    "start_metrics_server",
    "timed",
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
