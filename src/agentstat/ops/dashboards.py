"""Grafana dashboards generated from the metric table and :class:`Objectives`.

Conventions, and why:

* A ``datasource`` template variable, not ``__inputs``: file provisioning ignores
  ``__inputs``; a variable works for provisioning and for UI import alike.
* Fixed ``uid`` per dashboard, so links and provisioning survive regeneration.
* Every query reads the raw metrics (so the dashboards work before any recording rule
  is installed), filters by the ``job`` variable and its own entity variable, uses
  ``$__rate_interval``, and aggregates with ``sum by`` / ``max by`` across processes.
* Thresholds are drawn at the target and at the alert value; the "slower than" panels
  show the exact bucket fractions the alerts use, next to the interpolated quantiles.

Why one long module: the panels are built as plain dicts here; moving them onto a
typed dashboard builder library is tracked separately and will shorten it.
"""

from __future__ import annotations

import json
from typing import Any

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops.objectives import DASHBOARD_UID_AGENTS, DASHBOARD_UID_RESOURCES, Objectives
from agentstat.semconv import Operation

Panel = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
JOB = 'job=~"$job"'
GREEN, ORANGE, RED = "green", "orange", "red"
SCHEMA_VERSION = 39


def _target(expr: str, legend: str, ref: str, *, heatmap: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": True,
    }
    if heatmap:
        target["format"] = "heatmap"
    return target


def _steps(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def _timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any] | None = None,
    *,
    maximum: float | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        },
        "thresholds": thresholds or _steps((GREEN, None)),
    }
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def _heatmap(title: str, description: str, expr: str) -> Panel:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [_target(expr, "{{le}}", "A", heatmap=True)],
        "fieldConfig": {"defaults": {"unit": "s"}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "tooltip": {"show": True, "yHistogram": True},
        },
    }


def _row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _variable(
    name: str, label: str, metric: str, label_name: str, depends_on_job: bool
) -> dict[str, Any]:
    selector = promql.matchers(JOB) if depends_on_job else ""
    query = f"label_values({metric}{selector}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def _layout(panels: list[Panel]) -> list[Panel]:
    """Ids and grid positions: rows span the width, other panels go two abreast."""
    y, x = 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        panel["id"] = panel_id
        if panel["type"] == "row":
            if x:
                y, x = y + 8, 0
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        panel["gridPos"] = {"h": 8, "w": 12, "x": x, "y": y}
        x += 12
        if x >= 24:
            y, x = y + 8, 0
    return panels


def _dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[Panel],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentstat"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": [_datasource_variable(), *variables]},
        "panels": _layout(panels),
    }


# ------------------------------------------------------------------ agents and tools


def _operation_panels(objectives: Objectives, operation: Operation, variable: str) -> list[Panel]:
    spec = operation.duration
    name = operation.name_label
    error = operation.error_label
    cancelled = semconv.ERROR_TYPE_CANCELLED
    entity = f'{name}=~"${variable}"'
    finished = promql.matchers(JOB, entity, f'{error}!="{cancelled}"')
    only_cancelled = promql.matchers(JOB, entity, f'{error}="{cancelled}"')
    failed = promql.matchers(JOB, entity, f'{error}!~"|{cancelled}"')
    calls = f"sum by ({name}) (rate({spec.count}{finished}[{RATE}]))"
    buckets = f"sum by ({name}, le) (rate({spec.bucket}{finished}[{RATE}]))"
    target_s = objectives.latency_p95_target_seconds
    alert_s = objectives.latency_p95_alert_seconds
    q = objectives.latency_quantile
    legend = f"{{{{{name}}}}}"
    noun, plural = operation.kind, f"{operation.kind}s"
    slow_targets = []
    for ref, bound in (("A", target_s), ("B", alert_s)):
        le = semconv.le_label(bound)
        bucket = promql.matchers(JOB, entity, f'le="{le}"', f'{error}!="{cancelled}"')
        slow_targets.append(
            _target(
                f"1 - sum by ({name}) (rate({spec.bucket}{bucket}[{RATE}]))\n/\n{calls}",
                f"{legend} > {le} s",
                ref,
            )
        )
    quantiles = [
        _target(f"histogram_quantile({qq}, {buckets})", f"{legend} p{round(qq * 100)}", ref)
        for ref, qq in (("A", 0.5), ("B", q), ("C", 0.99))
    ]
    return [
        _row(f"{operation.title}s"),
        _timeseries(
            f"{operation.title} latency P50 / P{round(q * 100)} / P99",
            f"Interpolated quantiles per {noun} (cancelled calls excluded). Lines at the "
            f"target ({target_s} s) and the alert threshold ({alert_s} s); alerts use the "
            "exact bucket fractions in the next panel.",
            quantiles,
            "s",
            _steps((GREEN, None), (ORANGE, target_s), (RED, alert_s)),
        ),
        _timeseries(
            f"{operation.title} calls slower than target and alert threshold",
            f"Exact share of calls above the {semconv.le_label(target_s)} s and "
            f"{semconv.le_label(alert_s)} s buckets. P{round(q * 100)} is above a bound "
            f"when this share exceeds {round((1 - q) * 100)} % (the line).",
            slow_targets,
            "percentunit",
            _steps((GREEN, None), (RED, objectives.slow_fraction_alert)),
            maximum=1,
        ),
        _timeseries(
            f"{operation.title} success rate",
            f"Share of finished calls per {noun} that succeeded; cancelled calls are not "
            f"counted. Target {objectives.success_rate_target:.0%}, alert below "
            f"{objectives.success_rate_alert:.0%}.",
            [
                _target(
                    f"1 - (\n  sum by ({name}) (rate({spec.count}{failed}[{RATE}]))\n"
                    f"  or\n  {calls} * 0\n)\n/\n{calls}",
                    legend,
                    "A",
                )
            ],
            "percentunit",
            _steps(
                (RED, None),
                (ORANGE, objectives.success_rate_alert),
                (GREEN, objectives.success_rate_target),
            ),
            maximum=1,
        ),
        _timeseries(
            f"{operation.title} errors by type",
            f"Failed calls per second by {noun} and error.type (``_OTHER`` past the cap).",
            [
                _target(
                    f"sum by ({name}, {error}) (rate({spec.count}{failed}[{RATE}]))",
                    f"{legend} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        _timeseries(
            f"{operation.title} throughput",
            f"Finished calls per second per {noun}, summed over every process; cancelled "
            "calls separately.",
            [
                _target(calls, legend, "A"),
                _target(
                    f"sum by ({name}) (rate({spec.count}{only_cancelled}[{RATE}]))",
                    f"{legend} cancelled",
                    "B",
                ),
            ],
            "reqps",
        ),
        _heatmap(
            f"{operation.title} latency heatmap",
            f"Calls per latency bucket over time, all selected {plural}.",
            f"sum by (le) (increase({spec.bucket}{finished}[{RATE}]))",
        ),
    ]


def _retry_panels() -> list[Panel]:
    attempts, give_ups = semconv.RETRY_ATTEMPTS, semconv.RETRY_GIVE_UPS
    target = attempts.label(semconv.RETRY_TARGET)
    error = attempts.label(semconv.ERROR_TYPE)
    return [
        _row("Retries"),
        _timeseries(
            "Retries per second",
            "Retries made after a failed attempt, by target and the error retried.",
            [
                _target(
                    f"sum by ({target}, {error}) "
                    f"(rate({attempts.prometheus_name}{promql.matchers(JOB)}[{RATE}]))",
                    f"{{{{{target}}}}} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        _timeseries(
            "Give-ups per second",
            "Calls that still failed when retrying stopped (attempts or deadline spent).",
            [
                _target(
                    f"sum by ({target}, {error}) "
                    f"(rate({give_ups.prometheus_name}{promql.matchers(JOB)}[{RATE}]))",
                    f"{{{{{target}}}}} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
    ]


def agents_dashboard(objectives: Objectives | None = None) -> dict[str, Any]:
    """Latency, success, errors, throughput and heatmaps of agents and tools; retries."""
    objectives = objectives or Objectives()
    variables = [
        _variable(
            "job", "Job", semconv.AGENT_OPERATION.duration.count, "job", depends_on_job=False
        ),
        _variable(
            "agent",
            "Agent",
            semconv.AGENT_OPERATION.duration.count,
            semconv.AGENT_OPERATION.name_label,
            True,
        ),
        _variable(
            "tool",
            "Tool",
            semconv.TOOL_OPERATION.duration.count,
            semconv.TOOL_OPERATION.name_label,
            True,
        ),
    ]
    panels = [
        *_operation_panels(objectives, semconv.AGENT_OPERATION, "agent"),
        *_operation_panels(objectives, semconv.TOOL_OPERATION, "tool"),
        *_retry_panels(),
    ]
    return _dashboard(
        DASHBOARD_UID_AGENTS,
        "agentstat / Agents and tools",
        "P50/P95/P99, success rate, errors and throughput per agent and tool, against the "
        "targets. Generated by agentstat; do not edit, regenerate.",
        variables,
        panels,
    )


# ----------------------------------------------------------------- caches and balancer


def _cache_panels(objectives: Objectives) -> list[Panel]:
    lookups = semconv.CACHE_LOOKUPS
    name = lookups.label(semconv.CACHE_NAME)
    tier = lookups.label(semconv.CACHE_TIER)
    result = lookups.label(semconv.CACHE_RESULT)
    reason = semconv.CACHE_EVICTIONS.label(semconv.CACHE_EVICTION_REASON)
    entity = f'{name}=~"$cache"'
    every = promql.matchers(JOB, entity)
    hits = promql.matchers(JOB, entity, f'{result}="{semconv.CACHE_RESULT_HIT}"')
    total = f"sum by ({name}, {tier}) (rate({lookups.prometheus_name}{every}[{RATE}]))"
    legend = f"{{{{{name}}}}} {{{{{tier}}}}}"
    size, capacity = semconv.CACHE_SIZE.prometheus_name, semconv.CACHE_CAPACITY.prometheus_name
    return [
        _row("Caches"),
        _timeseries(
            "Cache hit rate by cache and tier",
            f"Hits per lookup, summed over every process. Tier empty: an untiered cache; "
            f"{semconv.TIER_ALL!r}: a tiered cache as a whole. Target "
            f"{objectives.cache_hit_rate_target:.0%}, "
            f"alert below {objectives.cache_hit_rate_alert:.0%}.",
            [
                _target(
                    f"(\n  sum by ({name}, {tier}) (rate({lookups.prometheus_name}{hits}[{RATE}]))"
                    f"\n  or\n  {total} * 0\n)\n/\n{total}",
                    legend,
                    "A",
                )
            ],
            "percentunit",
            _steps(
                (RED, None),
                (ORANGE, objectives.cache_hit_rate_alert),
                (GREEN, objectives.cache_hit_rate_target),
            ),
            maximum=1,
        ),
        _timeseries(
            "Cache lookups per second",
            "Lookups by cache, tier and result.",
            [
                _target(
                    f"sum by ({name}, {tier}, {result}) "
                    f"(rate({lookups.prometheus_name}{every}[{RATE}]))",
                    f"{legend} {{{{{result}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        _timeseries(
            "Cache fill",
            "Entries held over capacity per cache and tier (largest process).",
            [
                _target(
                    f"max by ({name}, {tier}) (\n  {size}{every}\n"
                    f"  / ignoring (otel_scope_name, otel_scope_version, otel_scope_schema_url)"
                    f"\n  {capacity}{every}\n)",
                    legend,
                    "A",
                )
            ],
            "percentunit",
            maximum=1,
        ),
        _timeseries(
            "Cache evictions per second",
            "Entries the cache removed itself, by reason (size or expired).",
            [
                _target(
                    f"sum by ({name}, {tier}, {reason}) "
                    f"(rate({semconv.CACHE_EVICTIONS.prometheus_name}{every}[{RATE}]))",
                    f"{legend} {{{{{reason}}}}}",
                    "A",
                )
            ],
            "ops",
        ),
    ]


def _balancer_panels(objectives: Objectives) -> list[Panel]:
    load, capacity = semconv.INSTANCE_LOAD, semconv.INSTANCE_CAPACITY
    pool = load.label(semconv.POOL_NAME)
    instance = load.label(semconv.INSTANCE_ID)
    entity = promql.matchers(JOB, f'{pool}=~"$pool"')
    scope = "otel_scope_name, otel_scope_version, otel_scope_schema_url"
    per_instance = f"{{{{{pool}}}}} {{{{{instance}}}}}"
    wait = semconv.BALANCER_WAIT
    return [
        _row("Load balancer"),
        _timeseries(
            "Instance load over capacity",
            "In-flight requests over capacity per instance, in the busiest process (as the "
            f"alert sees it). Alert above {objectives.instance_load_alert:.0%}.",
            [
                _target(
                    f"max by ({pool}, {instance}) (\n  {load.prometheus_name}{entity}\n"
                    f"  / ignoring ({scope})\n  {capacity.prometheus_name}{entity}\n)",
                    per_instance,
                    "A",
                )
            ],
            "percentunit",
            _steps((GREEN, None), (RED, objectives.instance_load_alert)),
            maximum=1,
        ),
        _timeseries(
            "In-flight requests and capacity",
            "Requests in flight per instance and the capacity granted to it, summed over "
            "every process.",
            [
                _target(
                    f"sum by ({pool}, {instance}) ({load.prometheus_name}{entity})",
                    f"{per_instance} load",
                    "A",
                ),
                _target(
                    f"sum by ({pool}, {instance}) ({capacity.prometheus_name}{entity})",
                    f"{per_instance} capacity",
                    "B",
                ),
            ],
            "short",
        ),
        _timeseries(
            "Healthy instances",
            "Healthy instances per pool as the worst process sees them; 0 means that "
            "process rejects every acquisition.",
            [
                _target(
                    f"min by ({pool}) (\n  sum by ({pool}, job, instance) "
                    f"({semconv.INSTANCE_HEALTHY.prometheus_name}{entity})\n)",
                    f"{{{{{pool}}}}}",
                    "A",
                )
            ],
            "short",
            _steps((RED, None), (GREEN, 1)),
        ),
        _timeseries(
            "Rejections per second",
            "Acquisitions refused because no healthy instance had capacity in time.",
            [
                _target(
                    f"sum by ({pool}) "
                    f"(rate({semconv.BALANCER_REJECTIONS.prometheus_name}{entity}[{RATE}]))",
                    f"{{{{{pool}}}}}",
                    "A",
                )
            ],
            "reqps",
            _steps((GREEN, None), (RED, 0.001)),
        ),
        _timeseries(
            "Selections per second",
            "How the balancer spreads work: selections per instance.",
            [
                _target(
                    f"sum by ({pool}, {instance}) "
                    f"(rate({semconv.BALANCER_SELECTIONS.prometheus_name}{entity}[{RATE}]))",
                    per_instance,
                    "A",
                )
            ],
            "reqps",
        ),
        _timeseries(
            "Wait for capacity P50 / P95",
            "Time callers waited for an instance with free capacity.",
            [
                _target(
                    f"histogram_quantile({qq}, sum by ({pool}, le) "
                    f"(rate({wait.bucket}{entity}[{RATE}])))",
                    f"{{{{{pool}}}}} p{round(qq * 100)}",
                    ref,
                )
                for ref, qq in (("A", 0.5), ("B", 0.95))
            ],
            "s",
        ),
    ]


def resources_dashboard(objectives: Objectives | None = None) -> dict[str, Any]:
    """Cache hit rates, fill and evictions; balancer load, health, rejections, waits."""
    objectives = objectives or Objectives()
    lookups = semconv.CACHE_LOOKUPS
    variables = [
        _variable("job", "Job", lookups.prometheus_name, "job", depends_on_job=False),
        _variable(
            "cache", "Cache", lookups.prometheus_name, lookups.label(semconv.CACHE_NAME), True
        ),
        _variable(
            "pool",
            "Pool",
            semconv.INSTANCE_LOAD.prometheus_name,
            semconv.INSTANCE_LOAD.label(semconv.POOL_NAME),
            True,
        ),
    ]
    return _dashboard(
        DASHBOARD_UID_RESOURCES,
        "agentstat / Caches and load balancer",
        "Cache hit rates per cache and tier, instance load against capacity, health, "
        "rejections and waits. Generated by agentstat; do not edit, regenerate.",
        variables,
        [*_cache_panels(objectives), *_balancer_panels(objectives)],
    )


#: file name -> generator
DASHBOARDS = {
    "agentstat-agents.json": agents_dashboard,
    "agentstat-resources.json": resources_dashboard,
}


def render(dashboard: dict[str, Any]) -> str:
    """Stable JSON text (sorted keys would scramble panels, so insertion order)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


__all__ = ["DASHBOARDS", "agents_dashboard", "render", "resources_dashboard"]
