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

* Both dashboards open on the same overview row: one number per target (worst agent
  and tool), the error budget left, the busiest instance and the firing alerts.

Why plain dicts and not grafana-foundation-sdk (Grafana's typed builders), measured here
with the SDK from the package index: it can express every panel below, but

* its version scheme defeats pinning by range: ``pip install grafana-foundation-sdk``
  picks ``1769699998!10.1.0`` (the Grafana 10.1 build, schemaVersion 36) over the 11.6
  build, which needs the exact epoch pin ``==1769699379!11.6.0`` and writes
  schemaVersion 41 (these dicts: 39), so the Grafana versions the files suit would follow
  whichever SDK build generated them;
* the same code breaks across builds (10.1 names ``GraphTresholdsStyleMode``, 11.6
  ``GraphThresholdsStyleMode``);
* its output differs from what these dicts say and what the live test proves on a real
  Prometheus: ``"style": "dark"``, ``"options": null`` on a bare stat panel, variable ids
  ``"00000000-..."``, no panel ids, its own grid layout, an empty annotation list;
* a panel is as many lines either way (one builder call per option), for 4.8 MB of
  dependency. The committed JSON is the product; these dicts say exactly what it holds.
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


def _stat(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any],
    width: int,
) -> Panel:
    for target in targets:
        target["instant"], target["range"] = True, False
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": thresholds, "color": {"mode": "thresholds"}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "justifyMode": "center",
        },
        "gridPos": {"h": 4, "w": width},
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
    """Ids and grid positions: rows span the width, graphs go two abreast, stats keep
    the width they were given; a panel that does not fit starts a new line."""
    y, x, height = 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        panel["id"] = panel_id
        if panel["type"] == "row":
            y, x, height = y + height, 0, 0
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        size = panel.get("gridPos", {"h": 8, "w": 12})
        if x + size["w"] > 24:
            y, x, height = y + height, 0, 0
        panel["gridPos"] = {"h": size["h"], "w": size["w"], "x": x, "y": y}
        x += size["w"]
        height = max(height, size["h"])
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
        fast = promql.matchers(JOB, entity, promql.le_matcher(bound), f'{error}!="{cancelled}"')
        slow_targets.append(
            _target(
                f"1 - sum by ({name}) (rate({spec.bucket}{fast}[{RATE}]))\n/\n{calls}",
                f"{legend} > {promql.num(bound)} s",
                ref,
            )
        )
    ttfc = operation.time_to_first_chunk
    first_chunk = promql.matchers(JOB, entity)
    first_chunk_buckets = f"sum by ({name}, le) (rate({ttfc.bucket}{first_chunk}[{RATE}]))"
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
        _timeseries(
            f"{operation.title} time to first chunk P50 / P95",
            f"Streaming {plural} only: time from the call to its first chunk "
            "(interpolated quantiles), what a user waits before anything appears.",
            [
                _target(
                    f"histogram_quantile({qq}, {first_chunk_buckets})",
                    f"{legend} p{round(qq * 100)}",
                    ref,
                )
                for ref, qq in (("A", 0.5), ("B", 0.95))
            ],
            "s",
        ),
    ]


def _overview_panels(objectives: Objectives) -> list[Panel]:
    """One number per target, worst first, the same row on both dashboards."""
    agent, tool = semconv.AGENT_OPERATION, semconv.TOOL_OPERATION
    cancelled = semconv.ERROR_TYPE_CANCELLED
    budget = objectives.error_budget_window

    def both(build: Any) -> list[dict[str, Any]]:
        return [_target(build(o), o.kind, ref) for ref, o in (("A", agent), ("B", tool))]

    def p95(o: Operation) -> str:
        finished = promql.matchers(JOB, f'{o.error_label}!="{cancelled}"')
        return (
            f"max(\n  histogram_quantile({objectives.latency_quantile}, sum by "
            f"({o.name_label}, le) (rate({o.duration.bucket}{finished}[{RATE}])))\n)"
        )

    def error_ratio(o: Operation, window: str) -> str:
        finished = promql.matchers(JOB, f'{o.error_label}!="{cancelled}"')
        failed = promql.matchers(JOB, f'{o.error_label}!~"|{cancelled}"')
        function = "rate" if window == RATE else "increase"
        calls = f"sum by ({o.name_label}) ({function}({o.duration.count}{finished}[{window}]))"
        errors = f"sum by ({o.name_label}) ({function}({o.duration.count}{failed}[{window}]))"
        return f"(\n  {errors}\n  or\n  {calls} * 0\n)\n/\n{calls}"

    def success(o: Operation) -> str:
        return f"min(\n  1 - {promql.indent(error_ratio(o, RATE), 2).lstrip()}\n)"

    def budget_left(o: Operation) -> str:
        ratio = promql.indent(error_ratio(o, budget), 4).lstrip()
        return (
            f"clamp_min(\n  1 - max(\n    {ratio}\n  ) / {promql.num(objectives.error_budget)},"
            "\n  0\n)"
        )

    lookups = semconv.CACHE_LOOKUPS
    name, tier = lookups.label(semconv.CACHE_NAME), lookups.label(semconv.CACHE_TIER)
    result = lookups.label(semconv.CACHE_RESULT)
    judged = f'{tier}=~"{promql.regex_alternatives(list(objectives.cache_alert_tiers))}"'
    every = promql.matchers(JOB, judged)
    hits = promql.matchers(JOB, judged, f'{result}="{semconv.CACHE_RESULT_HIT}"')
    total = f"sum by ({name}, {tier}) (rate({lookups.prometheus_name}{every}[{RATE}]))"
    hit_rate = (
        f"min(\n  (\n    sum by ({name}, {tier}) "
        f"(rate({lookups.prometheus_name}{hits}[{RATE}]))\n    or\n    {total} * 0\n  )\n"
        f"  /\n  {total}\n)"
    )
    load, capacity = semconv.INSTANCE_LOAD, semconv.INSTANCE_CAPACITY
    pool = load.label(semconv.POOL_NAME)
    instance = load.label(semconv.INSTANCE_ID)
    scope = "otel_scope_name, otel_scope_version, otel_scope_schema_url"
    job = promql.matchers(JOB)
    busiest = (
        f"max(\n  max by ({pool}, {instance}) (\n    {load.prometheus_name}{job}\n"
        f"    / ignoring ({scope})\n    {capacity.prometheus_name}{job}\n  )\n)"
    )
    _, imbalance = promql.busiest_utilization(objectives, job)
    firing = 'count(ALERTS{alertname=~"Agentstat.+", alertstate="firing"}) or vector(0)'
    latency_steps = _steps(
        (GREEN, None),
        (ORANGE, objectives.latency_p95_target_seconds),
        (RED, objectives.latency_p95_alert_seconds),
    )
    success_steps = _steps(
        (RED, None),
        (ORANGE, objectives.success_rate_alert),
        (GREEN, objectives.success_rate_target),
    )
    q = f"P{round(objectives.latency_quantile * 100)}"
    return [
        _row("Overview"),
        _stat(
            f"{q} latency, worst",
            f"The slowest agent's and tool's interpolated {q} now. Target "
            f"{promql.num(objectives.latency_p95_target_seconds)} s, alert above "
            f"{promql.num(objectives.latency_p95_alert_seconds)} s (the alert counts the "
            "exact bucket share; see the panels below).",
            both(p95),
            "s",
            latency_steps,
            4,
        ),
        _stat(
            "Success rate, worst",
            f"The least successful agent and tool now; cancelled calls not counted. "
            f"Objective {objectives.success_rate_target:.0%}, alert below "
            f"{objectives.success_rate_alert:.0%}.",
            both(success),
            "percentunit",
            success_steps,
            4,
        ),
        _stat(
            f"Error budget left, {budget}",
            f"Share of the {budget} error budget ({objectives.error_budget:.0%} of calls for "
            f"the {objectives.success_rate_target:.0%} objective) the worst agent and tool "
            "have left; 0 when spent.",
            both(budget_left),
            "percentunit",
            _steps((RED, None), (ORANGE, 0.25), (GREEN, 0.5)),
            4,
        ),
        _stat(
            "Cache hit rate, worst",
            f"The worst judged cache (untiered, or a tiered cache as a whole) now. Target "
            f"{objectives.cache_hit_rate_target:.0%}, alert below "
            f"{objectives.cache_hit_rate_alert:.0%}.",
            [_target(hit_rate, "cache", "A")],
            "percentunit",
            _steps(
                (RED, None),
                (ORANGE, objectives.cache_hit_rate_alert),
                (GREEN, objectives.cache_hit_rate_target),
            ),
            3,
        ),
        _stat(
            "Busiest instance",
            "In-flight requests over capacity of the busiest balanced instance, in its "
            f"busiest process. Alert above {objectives.instance_load_alert:.0%}.",
            [_target(busiest, "load", "A")],
            "percentunit",
            _steps((GREEN, None), (RED, objectives.instance_load_alert)),
            3,
        ),
        _stat(
            "Load spread, worst pool",
            f"The busiest healthy instance's load per capacity over its pool's, over "
            f"{objectives.imbalance_window}: 1 is even. Ticket above "
            f"{promql.num(objectives.imbalance_alert)} (with traffic and the instance at "
            f"least {objectives.imbalance_min_utilization:.0%} busy).",
            [_target(f"max(\n{promql.indent(imbalance, 2)}\n)", "spread", "A")],
            "none",
            _steps((GREEN, None), (ORANGE, objectives.imbalance_alert)),
            3,
        ),
        _stat(
            "Firing agentstat alerts",
            "Alerts of the agentstat rules firing now (Prometheus's ALERTS series; 0 "
            "when the rules are not installed).",
            [_target(firing, "firing", "A")],
            "none",
            _steps((GREEN, None), (RED, 1)),
            3,
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
        *_overview_panels(objectives),
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
    _, imbalance = promql.busiest_utilization(objectives, entity)
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
            "Load spread per pool",
            "The busiest healthy instance's load per capacity over its pool's (all healthy "
            f"instances, every process), averaged over {objectives.imbalance_window}: 1 is "
            "an even, capacity-weighted spread. The ticket AgentstatPoolLoadUneven fires "
            f"above {promql.num(objectives.imbalance_alert)} (the line) for "
            f"{objectives.imbalance_for} while the instance is at least "
            f"{objectives.imbalance_min_utilization:.0%} busy and the pool makes "
            f"{promql.num(objectives.imbalance_min_selections)} selections/s or more.",
            [_target(imbalance, f"{{{{{pool}}}}}", "A")],
            "none",
            _steps((GREEN, None), (RED, objectives.imbalance_alert)),
        ),
        _timeseries(
            "Acquisitions that waited per second",
            "Acquisitions that found no free capacity and waited, per pool (0 when no "
            "caller waits: the series exists from the pool's creation).",
            [
                _target(
                    f"sum by ({pool}) (rate({wait.count}{entity}[{RATE}]))",
                    f"{{{{{pool}}}}}",
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
        [*_overview_panels(objectives), *_cache_panels(objectives), *_balancer_panels(objectives)],
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
