"""Prometheus recording and alerting rules generated from :class:`Targets` and the
metric table.

Design, and why:

* Latency alerts count calls per bucket instead of estimating a quantile: "P95 > 1 s"
  is exactly "more than 5 % of calls took longer than 1 s", i.e.
  ``1 - rate(bucket{le="1.0"}) / rate(count) > 0.05``. ``histogram_quantile``
  interpolates inside a bucket and can report 2.25 s for a true 1.4 s.
* Success rate excludes cancelled calls from both sides of the ratio; cancellation is
  the caller's choice, not a failure.
* Every rule aggregates with ``sum by`` / ``max by`` over the entity's own labels (plus
  ``Targets.group_by``), so many processes scraped by one Prometheus give one answer
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

import re
from dataclasses import dataclass
from typing import Any

from agentstat import semconv
from agentstat.ops import _yaml
from agentstat.ops.targets import (
    SEVERITY_CRITICAL,
    SEVERITY_WARNING,
    BurnRate,
    Targets,
    duration_seconds,
)

Rule = dict[str, Any]

_SCOPE_LABELS = "otel_scope_name, otel_scope_version, otel_scope_schema_url"


@dataclass(frozen=True)
class Subject:
    """Something that is called and timed: agents and tools share every latency and
    success rule, differing only in metric, name label and wording."""

    level: str  # recording-rule level prefix
    title: str  # CamelCase part of alert names
    noun: str  # wording in annotations
    spec: semconv.MetricSpec
    name_attribute: str

    @property
    def name_label(self) -> str:
        return self.spec.label(self.name_attribute)

    @property
    def error_label(self) -> str:
        return self.spec.label(semconv.ERROR_TYPE)

    def calls(self, window: str) -> str:
        """Recorded rate of finished (not cancelled) calls per second."""
        return f"{self.level}:agentstat_calls:rate{window}"

    def error_ratio(self, window: str) -> str:
        """Recorded share of finished calls that failed."""
        return f"{self.level}:agentstat_errors_per_call:ratio_rate{window}"

    def slow_ratio(self, window: str) -> str:
        """Recorded share of finished calls slower than the ``le`` label's bound."""
        return f"{self.level}:agentstat_calls_slower_than_le:ratio_rate{window}"


AGENTS = Subject("agent", "Agent", "agent", semconv.AGENT_DURATION, semconv.GEN_AI_AGENT_NAME)
TOOLS = Subject("tool", "Tool", "tool", semconv.TOOL_DURATION, semconv.GEN_AI_TOOL_NAME)
SUBJECTS = (AGENTS, TOOLS)

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


def num(value: float) -> str:
    """A float as PromQL/YAML text without exponent or float noise."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def selector(targets: Targets, *matchers: str) -> str:
    """``{...}`` with ``matchers`` plus the user's selector."""
    parts = [m for m in matchers if m]
    extra = targets.selector.strip().rstrip(",").strip()
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}" if parts else ""


def by(targets: Targets, *labels: str) -> str:
    """``by (...)`` clause: the entity's labels plus ``Targets.group_by``."""
    seen = dict.fromkeys((*labels, *targets.group_by))
    return f"by ({', '.join(seen)})"


def regex_alternatives(values: list[str]) -> str:
    """A PromQL regex (inside a double-quoted string) matching exactly ``values``."""
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in values)


def _guard(window: str, per_window: int) -> str:
    """``(N / seconds)``: at least N events within ``window``, as a per-second rate."""
    return f"({per_window} / {num(duration_seconds(window))})"


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def _alert(
    targets: Targets,
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
    rule["labels"] = {"severity": severity, **(labels or {}), **targets.extra_labels}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": targets.runbook_url(name),
    }
    return rule


def _ms(seconds: float) -> str:
    return f"{num(seconds * 1000)} ms" if seconds < 1 else f"{num(seconds)} s"


# --------------------------------------------------------------------- agents and tools


def subject_records(targets: Targets, subject: Subject) -> list[Rule]:
    """Call rates and error ratios over every window, slow-call ratios over rate_window."""
    spec = subject.spec
    entity = by(targets, subject.name_label)
    finished = selector(targets, f'{subject.error_label}!="{semconv.ERROR_TYPE_CANCELLED}"')
    failed = selector(targets, f'{subject.error_label}!~"|{semconv.ERROR_TYPE_CANCELLED}"')
    rules: list[Rule] = []

    def calls(window: str, indent: str = "") -> str:
        return (
            f"{indent}sum {entity} (\n{indent}  rate({spec.count}{finished}[{window}])\n{indent})"
        )

    for window in targets.windows():
        rules.append(_record(subject.calls(window), calls(window)))
        rules.append(
            _record(
                subject.error_ratio(window),
                f"(\n  sum {entity} (\n    rate({spec.count}{failed}[{window}])\n  )\n"
                f"  or\n{calls(window, '  ')} * 0\n)\n/\n{calls(window)}",
            )
        )
    bounds = [
        semconv.le_label(targets.latency_p95_target_seconds),
        semconv.le_label(targets.latency_p95_alert_seconds),
    ]
    buckets = selector(
        targets,
        f'le=~"{regex_alternatives(sorted(set(bounds)))}"',
        f'{subject.error_label}!="{semconv.ERROR_TYPE_CANCELLED}"',
    )
    window = targets.rate_window
    rules.append(
        _record(
            subject.slow_ratio(window),
            f"1 - (\n  sum {by(targets, subject.name_label, 'le')} (\n"
            f"    rate({spec.bucket}{buckets}[{window}])\n  )\n"
            f"  / ignoring (le) group_left\n{calls(window, '  ')}\n)",
        )
    )
    return rules


def subject_alerts(targets: Targets, subject: Subject) -> list[Rule]:
    """Latency (alert and target), success rate and error-budget burn alerts."""
    window = targets.rate_window
    who = f"{subject.noun} {{{{ $labels.{subject.name_label} }}}}"
    quantile = f"P{num(targets.latency_quantile * 100)}"
    allowed = num(targets.slow_fraction_alert)
    guard = f"{subject.calls(window)} > {_guard(window, targets.min_calls)}"
    rules: list[Rule] = []
    for bound, name, severity, for_ in (
        (
            targets.latency_p95_alert_seconds,
            f"Agentstat{subject.title}LatencyHigh",
            SEVERITY_CRITICAL,
            targets.latency_for,
        ),
        (
            targets.latency_p95_target_seconds,
            f"Agentstat{subject.title}LatencyAboveTarget",
            SEVERITY_WARNING,
            targets.latency_target_for,
        ),
    ):
        le = semconv.le_label(bound)
        rules.append(
            _alert(
                targets,
                name,
                f'{subject.slow_ratio(window)}{{le="{le}"}} > {allowed}\n'
                f"and ignoring (le)\n{guard}",
                for_,
                severity,
                f"{quantile} latency of {who} is above {_ms(bound)}.",
                f"{{{{ $value | humanizePercentage }}}} of calls to {who} took longer than "
                f"{_ms(bound)} over the last {window}; at most "
                f"{num(targets.slow_fraction_alert * 100)} % may for {quantile} < {_ms(bound)}.",
            )
        )
    alert_ratio = num(1 - targets.success_rate_alert)
    rules.append(
        _alert(
            targets,
            f"Agentstat{subject.title}SuccessRateLow",
            f"{subject.error_ratio(window)} > {alert_ratio}\nand\n{guard}",
            targets.success_rate_for,
            SEVERITY_CRITICAL,
            f"Success rate of {who} is below {num(targets.success_rate_alert * 100)} %.",
            f"{{{{ $value | humanizePercentage }}}} of calls to {who} failed over the last "
            f"{window} (alert above {num((1 - targets.success_rate_alert) * 100)} %; "
            "cancelled calls are not counted).",
        )
    )
    for burn in targets.burn_rates:
        rules.append(_burn_alert(targets, subject, burn, who))
    return rules


def _burn_alert(targets: Targets, subject: Subject, burn: BurnRate, who: str) -> Rule:
    threshold = num(burn.factor * targets.error_budget)
    guard = _guard(burn.short_window, targets.min_calls)
    objective = num(targets.success_rate_target * 100)
    return _alert(
        targets,
        f"Agentstat{subject.title}ErrorBudgetBurn",
        f"{subject.error_ratio(burn.long_window)} > {threshold}\n"
        f"and\n{subject.error_ratio(burn.short_window)} > {threshold}\n"
        f"and\n{subject.calls(burn.short_window)} > {guard}",
        burn.for_,
        burn.severity,
        f"{who[0].upper()}{who[1:]} is burning its {objective} % success error budget "
        f"{num(burn.factor)}x too fast.",
        f"{{{{ $value | humanizePercentage }}}} of calls to {who} failed over the last "
        f"{burn.long_window}, and more than {num(burn.factor * targets.error_budget * 100)} % "
        f"over the last {burn.short_window}: at this rate the {objective} % objective's "
        f"budget lasts {30 / burn.factor:.1f} days of 30.",
        {"long_window": burn.long_window, "short_window": burn.short_window},
    )


# ------------------------------------------------------------------------------- caches


def cache_rules(targets: Targets) -> list[Rule]:
    """Lookup rates and hit ratios per cache and tier, and the two hit-rate alerts."""
    spec = semconv.CACHE_LOOKUPS
    name = spec.label(semconv.CACHE_NAME)
    tier = spec.label(semconv.CACHE_TIER)
    result = spec.label(semconv.CACHE_RESULT)
    window = targets.rate_window
    entity = by(targets, name, tier)
    hits = selector(targets, f'{result}="{semconv.CACHE_RESULT_HIT}"')

    def lookups(indent: str = "") -> str:
        every = f"{spec.prometheus_name}{selector(targets)}[{window}]"
        return f"{indent}sum {entity} (\n{indent}  rate({every})\n{indent})"

    rules: list[Rule] = [
        _record(cache_lookups(window), lookups()),
        _record(
            cache_hit_ratio(window),
            f"(\n  sum {entity} (\n    rate({spec.prometheus_name}{hits}[{window}])\n  )\n"
            f"  or\n{lookups('  ')} * 0\n)\n/\n{lookups()}",
        ),
    ]
    who = (
        f"cache {{{{ $labels.{name} }}}}{{{{ with $labels.{tier} }}}} tier {{{{ . }}}}{{{{ end }}}}"
    )
    guard = f"{cache_lookups(window)} > {_guard(window, targets.min_cache_lookups)}"
    judged = f'{{{tier}=~"{regex_alternatives(list(targets.cache_alert_tiers))}"}}'
    for threshold, alert, severity, for_ in (
        (
            targets.cache_hit_rate_alert,
            "AgentstatCacheHitRateLow",
            SEVERITY_CRITICAL,
            targets.cache_hit_rate_for,
        ),
        (
            targets.cache_hit_rate_target,
            "AgentstatCacheHitRateBelowTarget",
            SEVERITY_WARNING,
            targets.cache_hit_rate_target_for,
        ),
    ):
        rules.append(
            _alert(
                targets,
                alert,
                f"{cache_hit_ratio(window)}{judged} < {num(threshold)}\nand\n{guard}",
                for_,
                severity,
                f"Hit rate of {who} is below {num(threshold * 100)} %.",
                f"Only {{{{ $value | humanizePercentage }}}} of lookups in {who} hit over the "
                f"last {window} (alert below {num(threshold * 100)} %).",
            )
        )
    return rules


# ----------------------------------------------------------------------------- balancer


def balancer_rules(targets: Targets) -> list[Rule]:
    """Instance utilisation, healthy instances and rejections per pool, with alerts.

    Utilisation is each process's load over the capacity *that process* grants the
    instance, maximised across processes: a saturated balancer in one worker is what
    makes its callers wait, even when the fleet-wide average looks fine.
    """
    pool = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    instance = semconv.INSTANCE_LOAD.label(semconv.INSTANCE_ID)
    window = targets.rate_window
    load = semconv.INSTANCE_LOAD.prometheus_name
    capacity = semconv.INSTANCE_CAPACITY.prometheus_name
    healthy = semconv.INSTANCE_HEALTHY.prometheus_name
    rejections = semconv.BALANCER_REJECTIONS.prometheus_name
    sel = selector(targets)
    per_process = by(targets, pool, *targets.process_labels)
    rules: list[Rule] = [
        _record(
            instance_utilization(window),
            f"max {by(targets, pool, instance)} (\n"
            f"  avg_over_time({load}{sel}[{window}])\n"
            f"  / ignoring ({_SCOPE_LABELS})\n"
            f"  avg_over_time({capacity}{sel}[{window}])\n)",
        ),
        _record(
            HEALTHY_INSTANCES,
            f"min {by(targets, pool)} (\n  sum {per_process} ({healthy}{sel})\n)",
        ),
        _record(
            pool_rejections(window),
            f"sum {by(targets, pool)} (\n  rate({rejections}{sel}[{window}])\n)",
        ),
    ]
    limit = num(targets.instance_load_alert * 100)
    rules.append(
        _alert(
            targets,
            "AgentstatInstanceLoadHigh",
            f"{instance_utilization(window)} > {num(targets.instance_load_alert)}",
            targets.instance_load_for,
            SEVERITY_CRITICAL,
            f"Instance {{{{ $labels.{instance} }}}} of pool {{{{ $labels.{pool} }}}} is above "
            f"{limit} % of its capacity.",
            f"Instance {{{{ $labels.{instance} }}}} of pool {{{{ $labels.{pool} }}}} averaged "
            f"{{{{ $value | humanizePercentage }}}} of its capacity over the last {window} in "
            f"its busiest process (alert above {limit} %).",
        )
    )
    rules.append(
        _alert(
            targets,
            "AgentstatPoolNoHealthyInstance",
            f"{HEALTHY_INSTANCES} == 0",
            targets.no_healthy_instance_for,
            SEVERITY_CRITICAL,
            f"Pool {{{{ $labels.{pool} }}}} has no healthy instance.",
            f"At least one process sees {{{{ $value }}}} healthy instances in pool "
            f"{{{{ $labels.{pool} }}}}: every acquisition there waits and is then rejected.",
        )
    )
    rules.append(
        _alert(
            targets,
            "AgentstatBalancerRejecting",
            f"{pool_rejections(window)} > 0",
            targets.rejections_for,
            SEVERITY_WARNING,
            f"Pool {{{{ $labels.{pool} }}}} is rejecting acquisitions.",
            f"Pool {{{{ $labels.{pool} }}}} rejected {{{{ $value | humanize }}}} acquisitions "
            f"per second over the last {window}: no healthy instance had capacity in time.",
        )
    )
    return rules


# -------------------------------------------------------------------------------- file


def rule_groups(targets: Targets | None = None) -> dict[str, Any]:
    """The whole rule file as a dict (``{"groups": [...]}``)."""
    targets = targets or Targets()
    groups: list[tuple[str, list[Rule]]] = [
        (f"agentstat-{s.noun}s", [*subject_records(targets, s), *subject_alerts(targets, s)])
        for s in SUBJECTS
    ]
    groups.append(("agentstat-caches", cache_rules(targets)))
    groups.append(("agentstat-balancers", balancer_rules(targets)))
    out: list[dict[str, Any]] = []
    for name, rules in groups:
        group: dict[str, Any] = {"name": name}
        if targets.evaluation_interval:
            group["interval"] = targets.evaluation_interval
        group["rules"] = rules
        out.append(group)
    return {"groups": out}


def alert_names(targets: Targets | None = None) -> list[str]:
    """Every distinct alert name the generator emits, in file order."""
    names: dict[str, None] = {}
    for group in rule_groups(targets)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                names[rule["alert"]] = None
    return list(names)


HEADER = (
    "# Generated by `python -m agentstat.ops.generate` from agentstat.semconv and\n"
    "# agentstat.ops.targets. Do not edit: change the generator and regenerate, or run\n"
    "# `agentstat rules` with your own thresholds, windows and selectors.\n"
)


def render(targets: Targets | None = None) -> str:
    """The rule file as YAML text."""
    return HEADER + _yaml.dump(rule_groups(targets))
