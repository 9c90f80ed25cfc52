"""The overview row both dashboards open on: one number per objective (worst agent and
tool), the error budget left, the busiest instance, load spread, firing alerts."""

from __future__ import annotations

from typing import Any

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops._grafana import (
    GREEN,
    JOB,
    ORANGE,
    RATE,
    RED,
    Panel,
    floor_steps,
    query_target,
    row_panel,
    stat_panel,
    threshold_steps,
)
from agentstat.ops.objectives import Objectives
from agentstat.semconv import Operation


def overview_panels(objectives: Objectives) -> list[Panel]:
    """One number per target, worst first, the same row on both dashboards."""
    agent, tool = semconv.AGENT_OPERATION, semconv.TOOL_OPERATION
    cancelled = semconv.ERROR_TYPE_CANCELLED
    budget = objectives.error_budget_window

    def both(build: Any) -> list[dict[str, Any]]:
        return [query_target(build(o), o.kind, ref) for ref, o in (("A", agent), ("B", tool))]

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
        return promql.share(errors, calls)

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
    hits_rate = f"sum by ({name}, {tier}) (rate({lookups.prometheus_name}{hits}[{RATE}]))"
    hit_rate = f"min(\n{promql.indent(promql.share(hits_rate, total), 2)}\n)"
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
    latency_steps = threshold_steps(
        (GREEN, None),
        (ORANGE, objectives.latency_p95_target_seconds),
        (RED, objectives.latency_p95_alert_seconds),
    )
    success_steps = floor_steps(objectives.success_rate_alert, objectives.success_rate_target)
    q = f"P{round(objectives.latency_quantile * 100)}"
    return [
        row_panel("Overview"),
        stat_panel(
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
        stat_panel(
            "Success rate, worst",
            f"The least successful agent and tool now; cancelled calls not counted. "
            f"Objective {objectives.success_rate_target:.0%}, alert below "
            f"{objectives.success_rate_alert:.0%}.",
            both(success),
            "percentunit",
            success_steps,
            4,
        ),
        stat_panel(
            f"Error budget left, {budget}",
            f"Share of the {budget} error budget ({objectives.error_budget:.0%} of calls for "
            f"the {objectives.success_rate_target:.0%} objective) the worst agent and tool "
            "have left; 0 when spent.",
            both(budget_left),
            "percentunit",
            threshold_steps((RED, None), (ORANGE, 0.25), (GREEN, 0.5)),
            4,
        ),
        stat_panel(
            "Cache hit rate, worst",
            f"The worst judged cache (untiered, or a tiered cache as a whole) now. Target "
            f"{objectives.cache_hit_rate_target:.0%}, alert below "
            f"{objectives.cache_hit_rate_alert:.0%}.",
            [query_target(hit_rate, "cache", "A")],
            "percentunit",
            floor_steps(objectives.cache_hit_rate_alert, objectives.cache_hit_rate_target),
            3,
        ),
        stat_panel(
            "Busiest instance",
            "In-flight requests over capacity of the busiest balanced instance, in its "
            f"busiest process. Alert above {objectives.instance_load_alert:.0%}.",
            [query_target(busiest, "load", "A")],
            "percentunit",
            threshold_steps((GREEN, None), (RED, objectives.instance_load_alert)),
            3,
        ),
        stat_panel(
            "Load spread, worst pool",
            f"The busiest healthy instance's load per capacity over its pool's, over "
            f"{objectives.imbalance_window}: 1 is even. Ticket above "
            f"{promql.num(objectives.imbalance_alert)} (with traffic and the instance at "
            f"least {objectives.imbalance_min_utilization:.0%} busy).",
            [query_target(f"max(\n{promql.indent(imbalance, 2)}\n)", "spread", "A")],
            "none",
            threshold_steps((GREEN, None), (ORANGE, objectives.imbalance_alert)),
            3,
        ),
        stat_panel(
            "Firing agentstat alerts",
            "Alerts of the agentstat rules firing now (Prometheus's ALERTS series; 0 "
            "when the rules are not installed).",
            [query_target(firing, "firing", "A")],
            "none",
            threshold_steps((GREEN, None), (RED, 1)),
            3,
        ),
    ]
