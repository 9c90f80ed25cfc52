"""PromQL building blocks shared by the rule and dashboard generators and ``check``.

The names of agentstat's recording rules (``level:metric:operations``), selectors with
the user's extra matchers, ``by`` clauses that keep the user's grouping labels, and
``histogram_quantile`` computed on bucket counts the way Prometheus does.
"""

from __future__ import annotations

import math
import re

from agentstat.ops.objectives import Objectives
from agentstat.semconv import Operation

# ---------------------------------------------------------------- recorded series names


def calls(operation: Operation, window: str) -> str:
    """Recorded rate of finished (not cancelled) calls per second."""
    return f"{operation.kind}:agentstat_calls:rate{window}"


def error_ratio(operation: Operation, window: str) -> str:
    """Recorded share of finished calls that failed."""
    return f"{operation.kind}:agentstat_errors_per_call:ratio_rate{window}"


def slow_ratio(operation: Operation, window: str) -> str:
    """Recorded share of finished calls slower than the ``le`` label's bound."""
    return f"{operation.kind}:agentstat_calls_slower_than_le:ratio_rate{window}"


CACHE_LEVEL = "cache_tier"
POOL_INSTANCE_LEVEL = "pool_instance"
POOL_LEVEL = "pool"


def cache_lookups(window: str) -> str:
    return f"{CACHE_LEVEL}:agentstat_cache_lookups:rate{window}"


def cache_hit_ratio(window: str) -> str:
    return f"{CACHE_LEVEL}:agentstat_cache_hits_per_lookup:ratio_rate{window}"


def instance_utilization(window: str) -> str:
    return f"{POOL_INSTANCE_LEVEL}:agentstat_balancer_utilization:max_avg{window}"


HEALTHY_INSTANCES = f"{POOL_LEVEL}:agentstat_balancer_healthy_instances:min_by_process"


def pool_rejections(window: str) -> str:
    return f"{POOL_LEVEL}:agentstat_balancer_rejections:rate{window}"


# ----------------------------------------------------------------------------- helpers


def matchers(*parts: str) -> str:
    """``{a, b}`` from the non-empty ``parts``; "" when there are none."""
    present = [p for p in parts if p]
    return "{" + ", ".join(present) + "}" if present else ""


def num(value: float) -> str:
    """A float as PromQL/YAML text without exponent or float noise."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def selector(objectives: Objectives, *parts: str) -> str:
    """``{...}`` with the matchers ``parts`` plus the user's selector."""
    return matchers(*parts, objectives.selector.strip().rstrip(",").strip())


def by(objectives: Objectives, *labels: str) -> str:
    """``by (...)`` clause: the entity's labels plus ``Objectives.group_by``."""
    seen = dict.fromkeys((*labels, *objectives.group_by))
    return f"by ({', '.join(seen)})"


def regex_alternatives(values: list[str]) -> str:
    """A PromQL regex (inside a double-quoted string) matching exactly ``values``."""
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in values)


def histogram_quantile(bounds: list[float], cumulative: list[float], q: float) -> float:
    """``histogram_quantile`` on cumulative bucket counts (the last one is ``+Inf``):
    linear inside the bucket, the last finite bound when the rank falls in ``+Inf``."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    for index, count in enumerate(cumulative):
        if count >= rank:
            if index >= len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index > 0 else 0.0
            below = cumulative[index - 1] if index > 0 else 0.0
            inside = count - below
            if inside <= 0:
                return bounds[index]
            return lower + (bounds[index] - lower) * (rank - below) / inside
    return bounds[-1]
