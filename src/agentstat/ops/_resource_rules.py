"""Recording and alerting rules of caches (hit rate per cache, judged on the whole
cache) and of the load balancer (load against capacity in the busiest process, no
healthy instance in any process, rejections, uneven distribution)."""

from __future__ import annotations

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops._rule_parts import (
    SCOPE_LABELS,
    Rule,
    alert_rule,
    recording_rule,
    traffic_guard,
)
from agentstat.ops.objectives import (
    SEVERITY_CRITICAL,
    SEVERITY_WARNING,
    Objectives,
)


def cache_rules(objectives: Objectives) -> list[Rule]:
    """Lookup rates and hit ratios per cache and tier, and the two hit-rate alerts."""
    spec = semconv.CACHE_LOOKUPS
    name = spec.label(semconv.CACHE_NAME)
    tier = spec.label(semconv.CACHE_TIER)
    result = spec.label(semconv.CACHE_RESULT)
    window = objectives.rate_window
    entity = promql.by(objectives, name, tier)
    hits = promql.selector(objectives, f'{result}="{semconv.CACHE_RESULT_HIT}"')

    def lookups() -> str:
        every = f"{spec.prometheus_name}{promql.selector(objectives)}[{window}]"
        return f"sum {entity} (\n  rate({every})\n)"

    rules: list[Rule] = [
        recording_rule(promql.cache_lookups(window), lookups()),
        recording_rule(
            promql.cache_hit_ratio(window),
            promql.exact(
                promql.share(
                    f"sum {entity} (\n  rate({spec.prometheus_name}{hits}[{window}])\n)", lookups()
                )
            ),
        ),
    ]
    who = (
        f"cache {{{{ $labels.{name} }}}}{{{{ with $labels.{tier} }}}} tier {{{{ . }}}}{{{{ end }}}}"
    )
    guard = (
        f"{promql.cache_lookups(window)} > {traffic_guard(window, objectives.min_cache_lookups)}"
    )
    judged = f'{{{tier}=~"{promql.regex_alternatives(list(objectives.cache_alert_tiers))}"}}'
    for threshold, alert, severity, for_ in (
        (
            objectives.cache_hit_rate_alert,
            "AgentstatCacheHitRateLow",
            SEVERITY_CRITICAL,
            objectives.cache_hit_rate_for,
        ),
        (
            objectives.cache_hit_rate_target,
            "AgentstatCacheHitRateBelowTarget",
            SEVERITY_WARNING,
            objectives.cache_hit_rate_target_for,
        ),
    ):
        rules.append(
            alert_rule(
                objectives,
                alert,
                f"{promql.cache_hit_ratio(window)}{judged} < {promql.num(threshold)}\nand\n{guard}",
                for_,
                severity,
                f"Hit rate of {who} is below {promql.num(threshold * 100)} %.",
                f"Only {{{{ $value | humanizePercentage }}}} of lookups in {who} hit over the "
                f"last {window} (alert below {promql.num(threshold * 100)} %).",
            )
        )
    return rules


# ----------------------------------------------------------------------------- balancer


def balancer_rules(objectives: Objectives) -> list[Rule]:
    """Instance utilisation, healthy instances and rejections per pool, with alerts.

    Utilisation is each process's load over the capacity *that process* grants the
    instance, maximised across processes: a saturated balancer in one worker is what
    makes its callers wait, even when the fleet-wide average looks fine.
    """
    pool = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    instance = semconv.INSTANCE_LOAD.label(semconv.INSTANCE_ID)
    window = objectives.rate_window
    load = semconv.INSTANCE_LOAD.prometheus_name
    capacity = semconv.INSTANCE_CAPACITY.prometheus_name
    healthy = semconv.INSTANCE_HEALTHY.prometheus_name
    rejections = semconv.BALANCER_REJECTIONS.prometheus_name
    sel = promql.selector(objectives)
    per_process = promql.by(objectives, pool, *objectives.process_labels)
    rules: list[Rule] = [
        recording_rule(
            promql.instance_utilization(window),
            promql.exact(
                f"max {promql.by(objectives, pool, instance)} (\n"
                f"  avg_over_time({load}{sel}[{window}])\n"
                f"  / ignoring ({SCOPE_LABELS})\n"
                f"  avg_over_time({capacity}{sel}[{window}])\n)"
            ),
        ),
        recording_rule(
            promql.HEALTHY_INSTANCES,
            f"min {promql.by(objectives, pool)} (\n  sum {per_process} ({healthy}{sel})\n)",
        ),
        recording_rule(
            promql.pool_rejections(window),
            f"sum {promql.by(objectives, pool)} (\n  rate({rejections}{sel}[{window}])\n)",
        ),
    ]
    rules.extend(_imbalance_records(objectives))
    limit = promql.num(objectives.instance_load_alert * 100)
    rules.append(
        alert_rule(
            objectives,
            "AgentstatInstanceLoadHigh",
            f"{promql.instance_utilization(window)} > {promql.num(objectives.instance_load_alert)}",
            objectives.instance_load_for,
            SEVERITY_CRITICAL,
            f"Instance {{{{ $labels.{instance} }}}} of pool {{{{ $labels.{pool} }}}} is above "
            f"{limit} % of its capacity.",
            f"Instance {{{{ $labels.{instance} }}}} of pool {{{{ $labels.{pool} }}}} averaged "
            f"{{{{ $value | humanizePercentage }}}} of its capacity over the last {window} in "
            f"its busiest process (alert above {limit} %).",
        )
    )
    rules.append(_imbalance_alert(objectives))
    rules.append(
        alert_rule(
            objectives,
            "AgentstatPoolNoHealthyInstance",
            f"{promql.HEALTHY_INSTANCES} == 0",
            objectives.no_healthy_instance_for,
            SEVERITY_CRITICAL,
            f"Pool {{{{ $labels.{pool} }}}} has no healthy instance.",
            f"At least one process sees {{{{ $value }}}} healthy instances in pool "
            f"{{{{ $labels.{pool} }}}}: every acquisition there waits and is then rejected.",
        )
    )
    rules.append(
        alert_rule(
            objectives,
            "AgentstatBalancerRejecting",
            f"{promql.pool_rejections(window)} > 0",
            objectives.rejections_for,
            SEVERITY_WARNING,
            f"Pool {{{{ $labels.{pool} }}}} is rejecting acquisitions.",
            f"Pool {{{{ $labels.{pool} }}}} rejected {{{{ $value | humanize }}}} acquisitions "
            f"per second over the last {window}: no healthy instance had capacity in time.",
        )
    )
    return rules


def _imbalance_records(objectives: Objectives) -> list[Rule]:
    """Even distribution per pool (see :func:`promql.busiest_utilization`), and the
    selection rate that tells traffic from a trickle."""
    pool = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    window = objectives.imbalance_window
    sel = promql.selector(objectives)
    busiest, imbalance = promql.busiest_utilization(objectives, sel)
    return [
        recording_rule(promql.pool_busiest_utilization(window), promql.exact(busiest)),
        recording_rule(promql.pool_imbalance(window), promql.exact(imbalance)),
        recording_rule(
            promql.pool_selections(window),
            f"sum {promql.by(objectives, pool)} (\n"
            f"  rate({semconv.BALANCER_SELECTIONS.prometheus_name}{sel}[{window}])\n)",
        ),
    ]


def _imbalance_alert(objectives: Objectives) -> Rule:
    pool = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    window = objectives.imbalance_window
    factor = promql.num(objectives.imbalance_alert)
    on_pool = promql.on(objectives, pool)
    busy = promql.num(objectives.imbalance_min_utilization * 100)
    return alert_rule(
        objectives,
        "AgentstatPoolLoadUneven",
        f"{promql.pool_imbalance(window)} > {factor}\n"
        f"and {on_pool}\n"
        f"{promql.pool_busiest_utilization(window)} >= "
        f"{promql.num(objectives.imbalance_min_utilization)}\n"
        f"and {on_pool}\n"
        f"{promql.pool_selections(window)} >= {promql.num(objectives.imbalance_min_selections)}",
        objectives.imbalance_for,
        SEVERITY_WARNING,
        f"Load in pool {{{{ $labels.{pool} }}}} is unevenly distributed.",
        f"The busiest healthy instance of pool {{{{ $labels.{pool} }}}} carried "
        f'{{{{ $value | printf "%.2f" }}}} times the pool\'s load per unit of capacity over '
        f"the last {window} (alert above {factor}x while that instance is at least {busy} % "
        f"busy and the pool makes at least {promql.num(objectives.imbalance_min_selections)} "
        "selections per second).",
    )
