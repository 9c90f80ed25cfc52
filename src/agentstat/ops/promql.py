"""PromQL building blocks shared by the rule and dashboard generators and ``check``.

The names of agentstat's recording rules (``level:metric:operations``), selectors with
the user's extra matchers, ``by`` clauses that keep the user's grouping labels, and
``histogram_quantile`` computed on bucket counts the way Prometheus does.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from agentstat import semconv
from agentstat.ops.objectives import Objectives
from agentstat.semconv import Operation

#: Every recorded ratio is rounded to nine decimals; see :func:`exact`.
SCALE = 1_000_000_000

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


def pool_imbalance(window: str) -> str:
    """Recorded utilisation of a pool's busiest healthy instance over the pool's."""
    return f"{POOL_LEVEL}:agentstat_balancer_imbalance:max_ratio_avg{window}"


def pool_busiest_utilization(window: str) -> str:
    """Recorded utilisation of a pool's busiest healthy instance, processes summed."""
    return f"{POOL_LEVEL}:agentstat_balancer_busiest_utilization:max_avg{window}"


def pool_selections(window: str) -> str:
    return f"{POOL_LEVEL}:agentstat_balancer_selections:rate{window}"


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


def by(objectives: Objectives, *labels: str, keyword: str = "by") -> str:
    """``by (...)`` clause: the entity's labels plus ``Objectives.group_by``."""
    seen = dict.fromkeys((*labels, *objectives.group_by))
    return f"{keyword} ({', '.join(seen)})"


def on(objectives: Objectives, *labels: str) -> str:
    """``on (...)`` clause matching the entity's labels plus ``Objectives.group_by``."""
    return by(objectives, *labels, keyword="on")


def le_spellings(bound: float) -> list[str]:
    """Every way an ``le`` label spells ``bound``, shortest first.

    A scrape of the OpenTelemetry Python exporter writes Python's float text
    (``"1.0"``); an OpenTelemetry Collector's ``prometheus`` and
    ``prometheusremotewrite`` exporters and Prometheus's own OTLP receiver write the
    shortest text without exponent (``"1"``). ``0.5`` is spelled the same on every path.
    Prometheus matches ``le`` literally: a rule naming one spelling never fires on the
    other path, silently.
    """
    python = semconv.le_label(bound)
    shortest = format(Decimal(repr(float(bound))), "f")
    if "." in shortest:
        shortest = shortest.rstrip("0").rstrip(".")
    return sorted({python, shortest}, key=len)


def le_matcher(bound: float) -> str:
    """A matcher for every spelling of ``bound``: ``le=~"1(\\\\.0)?"``, ``le="0.5"``."""
    spellings = le_spellings(bound)
    if len(spellings) == 1:
        return f'le="{spellings[0]}"'
    if spellings[1] == f"{spellings[0]}.0":
        return f'le=~"{regex_alternatives(spellings[:1])}(\\\\.0)?"'
    return f'le=~"{regex_alternatives(spellings)}"'


def exact(expr: str) -> str:
    """``expr`` rounded to nine decimals, so that a ratio compares exactly at its threshold.

    ``rate()`` of integer counts is not exact in floating point: 19 fast calls of 20
    came out as 0.05000000000000004 slow, which ``> 0.05`` took for a breach. Measured
    with promtool on 199 agents at exactly 95.0 % fast (one to three workers each): the
    plain ratio breached for 103, ``bucket < 0.95 * count`` for 13, this form for none,
    while 94.9 % still breaches. ``round(v * 1e9) / 1e9`` divides a whole number by an
    exactly representable 1e9, so an exact fraction lands on the very double its decimal
    literal parses to. (PromQL's ``round(v, 1e-9)`` does not: it divides by
    ``1 / 1e-9 = 999999999.9999999`` and turned 1.5 into 1.5000000000000002.)
    """
    scale = str(SCALE)
    return f"round(\n  (\n{indent(expr, 4)}\n  )\n  * {scale}\n)\n/ {scale}"


def share(part: str, total: str) -> str:
    """``part / total``, 0 (not "no data") where ``part`` matched no series but
    ``total`` did: a cache with no hits, an agent with no failures."""
    return f"(\n{indent(part, 2)}\n  or\n{indent(total, 2)} * 0\n)\n/\n{total}"


def indent(text: str, spaces: int) -> str:
    """``text`` with every non-empty line indented."""
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def exceeds(ratio: float, limit: float) -> bool:
    """``ratio > limit`` after the rules' rounding (for ``agentstat check``)."""
    return _nine_decimals(ratio) > limit


def falls_below(ratio: float, limit: float) -> bool:
    """``ratio < limit`` after the rules' rounding (for ``agentstat check``)."""
    return _nine_decimals(ratio) < limit


def _nine_decimals(value: float) -> float:
    return round(value * SCALE) / SCALE if math.isfinite(value) else value


def regex_alternatives(values: list[str]) -> str:
    """A PromQL regex (inside a double-quoted string) matching exactly ``values``."""
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in values)


def busiest_utilization(objectives: Objectives, sel: str) -> tuple[str, str]:
    """PromQL of a pool's busiest healthy instance's utilisation, and of that over the
    pool's utilisation (the even-distribution measure), both per pool.

    Utilisation is load over capacity averaged over ``imbalance_window`` and summed over
    every process (an instance's real load is what every balancer sends it), among the
    instances healthy in every process throughout the window (an ejected instance's
    share goes to the others by design). The pool's utilisation is the same sum over
    its healthy instances, so the fair share is weighted by capacity: shares that follow
    capacities read 1.0. Each is one expression, so it reads one snapshot.
    """
    pool = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    instance = semconv.INSTANCE_LOAD.label(semconv.INSTANCE_ID)
    window = objectives.imbalance_window
    entity = by(objectives, pool, instance)
    healthy = (
        f"{on(objectives, pool, instance)} (\n"
        f"  min {entity} (min_over_time({semconv.INSTANCE_HEALTHY.prometheus_name}{sel}"
        f"[{window}])) == 1\n)"
    )

    def healthy_sum(spec: semconv.MetricSpec) -> str:
        average = f"avg_over_time({spec.prometheus_name}{sel}[{window}])"
        return f"sum {entity} ({average})\nand {healthy}"

    load = healthy_sum(semconv.INSTANCE_LOAD)
    capacity = healthy_sum(semconv.INSTANCE_CAPACITY)
    per_instance = f"(\n{indent(load, 2)}\n)\n/\n(\n{indent(capacity, 2)}\n)"
    per_pool = (
        f"sum {by(objectives, pool)} (\n{indent(load, 2)}\n)\n/\n"
        f"sum {by(objectives, pool)} (\n{indent(capacity, 2)}\n)"
    )
    busiest = f"max {by(objectives, pool)} (\n{indent(per_instance, 2)}\n)"
    imbalance = f"{busiest}\n/ {on(objectives, pool)}\n(\n{indent(per_pool, 2)}\n)"
    return busiest, imbalance


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
