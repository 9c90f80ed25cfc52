"""Prometheus recording and alerting rules generated from :class:`Objectives` and the
metric table.

Design, and why:

* Latency alerts count calls per bucket instead of estimating a quantile: "P95 > 1 s"
  is exactly "more than 5 % of calls took longer than 1 s", i.e.
  ``1 - rate(bucket{le="1.0"}) / rate(count) > 0.05``. ``histogram_quantile``
  interpolates inside a bucket and can report 2.25 s for a true 1.4 s.
* Success rate excludes cancelled calls from both sides of the ratio; cancellation is
  the caller's choice, not a failure.
* Every rule aggregates with ``sum by`` / ``max by`` over the entity's own labels (plus
  ``Objectives.group_by``), so many processes scraped by one Prometheus give one answer
  per agent, tool, cache tier and pool.
* Every ratio is computed within one expression from the raw series. One query sees one
  consistent snapshot; dividing a fresh rate by a rate recorded by an earlier rule of the
  group mixes snapshots when a scrape lands in between, which with short windows showed
  phantom slow calls (5 % of a healthy agent's calls "slower than 1 s").
* Every ratio alert has a minimum-traffic guard so an idle entity never fires; ratios
  of idle entities are NaN, which compares false anyway.
* Recording rules follow ``level:metric:operations``; alerts are ``Agentstat``-prefixed
  CamelCase with ``severity``, ``summary``, templated ``description`` and ``runbook_url``.
"""

from __future__ import annotations

from typing import Any

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops.objectives import (
    SEVERITY_CRITICAL,
    SEVERITY_WARNING,
    BurnRate,
    Objectives,
    duration_seconds,
)
from agentstat.semconv import Operation

Rule = dict[str, Any]

_SCOPE_LABELS = "otel_scope_name, otel_scope_version, otel_scope_schema_url"


def _guard(window: str, per_window: int) -> str:
    """``(N / seconds)``: at least N events within ``window``, as a per-second rate."""
    return f"({per_window} / {promql.num(duration_seconds(window))})"


def _record(name: str, expr: str, labels: dict[str, str] | None = None) -> Rule:
    rule: Rule = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def _alert(
    objectives: Objectives,
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    labels: dict[str, str] | None = None,
) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if duration_seconds(for_) > 0:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {}), **objectives.extra_labels}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": objectives.runbook_url(name),
    }
    return rule


def _ms(seconds: float) -> str:
    return f"{promql.num(seconds * 1000)} ms" if seconds < 1 else f"{promql.num(seconds)} s"


# --------------------------------------------------------------------- agents and tools


def operation_records(objectives: Objectives, operation: Operation) -> list[Rule]:
    """Call rates and error ratios over every window, slow-call ratios over rate_window."""
    spec = operation.duration
    entity = promql.by(objectives, operation.name_label)
    finished = promql.selector(
        objectives, f'{operation.error_label}!="{semconv.ERROR_TYPE_CANCELLED}"'
    )
    failed = promql.selector(
        objectives, f'{operation.error_label}!~"|{semconv.ERROR_TYPE_CANCELLED}"'
    )
    rules: list[Rule] = []

    def calls(window: str, indent: str = "") -> str:
        return (
            f"{indent}sum {entity} (\n{indent}  rate({spec.count}{finished}[{window}])\n{indent})"
        )

    for window in objectives.windows():
        rules.append(_record(promql.calls(operation, window), calls(window)))
        rules.append(
            _record(
                promql.error_ratio(operation, window),
                promql.exact(
                    f"(\n  sum {entity} (\n    rate({spec.count}{failed}[{window}])\n  )\n"
                    f"  or\n{calls(window, '  ')} * 0\n)\n/\n{calls(window)}"
                ),
            )
        )
    # One rule per bound, summed over every spelling of it (``le="1"`` from a Collector
    # or an OTLP receiver, ``le="1.0"`` from a scrape) and labelled with one spelling,
    # so an alert reads the same series whichever path the metrics took.
    window = objectives.rate_window
    for bound in sorted(
        {objectives.latency_p95_target_seconds, objectives.latency_p95_alert_seconds}
    ):
        fast = promql.selector(
            objectives,
            promql.le_matcher(bound),
            f'{operation.error_label}!="{semconv.ERROR_TYPE_CANCELLED}"',
        )
        rules.append(
            _record(
                promql.slow_ratio(operation, window),
                promql.exact(
                    f"1 - (\n  sum {entity} (\n    rate({spec.bucket}{fast}[{window}])\n  )\n"
                    f"  /\n{calls(window, '  ')}\n)"
                ),
                {"le": semconv.le_label(bound)},
            )
        )
    return rules


def operation_alerts(objectives: Objectives, operation: Operation) -> list[Rule]:
    """Latency (alert and target), success rate and error-budget burn alerts."""
    window = objectives.rate_window
    who = f"{operation.kind} {{{{ $labels.{operation.name_label} }}}}"
    quantile = f"P{promql.num(objectives.latency_quantile * 100)}"
    allowed = promql.num(objectives.slow_fraction_alert)
    guard = f"{promql.calls(operation, window)} > {_guard(window, objectives.min_calls)}"
    rules: list[Rule] = []
    for bound, name, severity, for_ in (
        (
            objectives.latency_p95_alert_seconds,
            f"Agentstat{operation.title}LatencyHigh",
            SEVERITY_CRITICAL,
            objectives.latency_for,
        ),
        (
            objectives.latency_p95_target_seconds,
            f"Agentstat{operation.title}LatencyAboveTarget",
            SEVERITY_WARNING,
            objectives.latency_target_for,
        ),
    ):
        le = semconv.le_label(bound)
        rules.append(
            _alert(
                objectives,
                name,
                f'{promql.slow_ratio(operation, window)}{{le="{le}"}} > {allowed}\n'
                f"and ignoring (le)\n{guard}",
                for_,
                severity,
                f"{quantile} latency of {who} is above {_ms(bound)}.",
                f"{{{{ $value | humanizePercentage }}}} of calls to {who} took longer than "
                f"{_ms(bound)} over the last {window}; at most "
                f"{promql.num(objectives.slow_fraction_alert * 100)} % may "
                f"for {quantile} < {_ms(bound)}.",
            )
        )
    alert_ratio = promql.num(1 - objectives.success_rate_alert)
    rules.append(
        _alert(
            objectives,
            f"Agentstat{operation.title}SuccessRateLow",
            f"{promql.error_ratio(operation, window)} > {alert_ratio}\nand\n{guard}",
            objectives.success_rate_for,
            SEVERITY_CRITICAL,
            f"Success rate of {who} is below {promql.num(objectives.success_rate_alert * 100)} %.",
            f"{{{{ $value | humanizePercentage }}}} of calls to {who} failed over the last "
            f"{window} (alert above {promql.num((1 - objectives.success_rate_alert) * 100)} %; "
            "cancelled calls are not counted).",
        )
    )
    for burn in objectives.burn_rates:
        rules.append(_burn_alert(objectives, operation, burn, who))
    return rules


def _burn_alert(objectives: Objectives, operation: Operation, burn: BurnRate, who: str) -> Rule:
    threshold = promql.num(burn.factor * objectives.error_budget)
    guard = _guard(burn.short_window, objectives.min_calls)
    objective = promql.num(objectives.success_rate_target * 100)
    return _alert(
        objectives,
        f"Agentstat{operation.title}ErrorBudgetBurn",
        f"{promql.error_ratio(operation, burn.long_window)} > {threshold}\n"
        f"and\n{promql.error_ratio(operation, burn.short_window)} > {threshold}\n"
        f"and\n{promql.calls(operation, burn.short_window)} > {guard}",
        burn.for_,
        burn.severity,
        f"{who[0].upper()}{who[1:]} is burning its {objective} % success error budget "
        f"{promql.num(burn.factor)}x too fast.",
        f"{{{{ $value | humanizePercentage }}}} of calls to {who} failed over the last "
        f"{burn.long_window}, and more than "
        f"{promql.num(burn.factor * objectives.error_budget * 100)} % "
        f"over the last {burn.short_window}: at this rate the {objective} % objective's "
        f"budget lasts {30 / burn.factor:.1f} days of 30.",
        {"long_window": burn.long_window, "short_window": burn.short_window},
    )


# ------------------------------------------------------------------------------- caches


def cache_rules(objectives: Objectives) -> list[Rule]:
    """Lookup rates and hit ratios per cache and tier, and the two hit-rate alerts."""
    spec = semconv.CACHE_LOOKUPS
    name = spec.label(semconv.CACHE_NAME)
    tier = spec.label(semconv.CACHE_TIER)
    result = spec.label(semconv.CACHE_RESULT)
    window = objectives.rate_window
    entity = promql.by(objectives, name, tier)
    hits = promql.selector(objectives, f'{result}="{semconv.CACHE_RESULT_HIT}"')

    def lookups(indent: str = "") -> str:
        every = f"{spec.prometheus_name}{promql.selector(objectives)}[{window}]"
        return f"{indent}sum {entity} (\n{indent}  rate({every})\n{indent})"

    rules: list[Rule] = [
        _record(promql.cache_lookups(window), lookups()),
        _record(
            promql.cache_hit_ratio(window),
            promql.exact(
                f"(\n  sum {entity} (\n    rate({spec.prometheus_name}{hits}[{window}])\n  )\n"
                f"  or\n{lookups('  ')} * 0\n)\n/\n{lookups()}"
            ),
        ),
    ]
    who = (
        f"cache {{{{ $labels.{name} }}}}{{{{ with $labels.{tier} }}}} tier {{{{ . }}}}{{{{ end }}}}"
    )
    guard = f"{promql.cache_lookups(window)} > {_guard(window, objectives.min_cache_lookups)}"
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
            _alert(
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
        _record(
            promql.instance_utilization(window),
            promql.exact(
                f"max {promql.by(objectives, pool, instance)} (\n"
                f"  avg_over_time({load}{sel}[{window}])\n"
                f"  / ignoring ({_SCOPE_LABELS})\n"
                f"  avg_over_time({capacity}{sel}[{window}])\n)"
            ),
        ),
        _record(
            promql.HEALTHY_INSTANCES,
            f"min {promql.by(objectives, pool)} (\n  sum {per_process} ({healthy}{sel})\n)",
        ),
        _record(
            promql.pool_rejections(window),
            f"sum {promql.by(objectives, pool)} (\n  rate({rejections}{sel}[{window}])\n)",
        ),
    ]
    rules.extend(_imbalance_records(objectives))
    limit = promql.num(objectives.instance_load_alert * 100)
    rules.append(
        _alert(
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
        _alert(
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
        _alert(
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
        _record(promql.pool_busiest_utilization(window), promql.exact(busiest)),
        _record(promql.pool_imbalance(window), promql.exact(imbalance)),
        _record(
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
    return _alert(
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


# -------------------------------------------------------------------------------- file


def rule_groups(objectives: Objectives | None = None) -> dict[str, Any]:
    """The whole rule file as a dict (``{"groups": [...]}``)."""
    objectives = objectives or Objectives()
    groups: list[tuple[str, list[Rule]]] = [
        (
            f"agentstat-{s.kind}s",
            [*operation_records(objectives, s), *operation_alerts(objectives, s)],
        )
        for s in semconv.OPERATIONS
    ]
    groups.append(("agentstat-caches", cache_rules(objectives)))
    groups.append(("agentstat-balancers", balancer_rules(objectives)))
    out: list[dict[str, Any]] = []
    for name, rules in groups:
        group: dict[str, Any] = {"name": name}
        if objectives.evaluation_interval:
            group["interval"] = objectives.evaluation_interval
        group["rules"] = rules
        out.append(group)
    return {"groups": out}


def alert_names(objectives: Objectives | None = None) -> list[str]:
    """Every distinct alert name the generator emits, in file order."""
    names: dict[str, None] = {}
    for group in rule_groups(objectives)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                names[rule["alert"]] = None
    return list(names)


HEADER = (
    "# Generated by `python -m agentstat.ops.generate` from agentstat.semconv and\n"
    "# agentstat.ops.objectives. Do not edit: change the generator and regenerate, or run\n"
    "# `agentstat rules` with your own thresholds, windows and selectors.\n"
)


def render(objectives: Objectives | None = None) -> str:
    """The rule file as YAML text: PyYAML, keys in generator order, PromQL as literal
    blocks so the committed file reads and diffs like hand-written rules."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def represent_str(self, data: str) -> yaml.ScalarNode:
            style = "|" if "\n" in data else None
            return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)  # lists indented under their key

    Dumper.add_representer(str, Dumper.represent_str)
    text = yaml.dump(
        rule_groups(objectives),
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1000,
        default_flow_style=False,
    )
    return HEADER + text
