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
from agentstat.ops._resource_rules import balancer_rules, cache_rules
from agentstat.ops._rule_parts import (
    Rule,
    alert_rule,
    in_words,
    recording_rule,
    traffic_guard,
)
from agentstat.ops.objectives import (
    SEVERITY_CRITICAL,
    SEVERITY_WARNING,
    BurnRate,
    Objectives,
)
from agentstat.semconv import Operation

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

    def calls(window: str) -> str:
        return f"sum {entity} (\n  rate({spec.count}{finished}[{window}])\n)"

    for window in objectives.windows():
        rules.append(recording_rule(promql.calls(operation, window), calls(window)))
        rules.append(
            recording_rule(
                promql.error_ratio(operation, window),
                promql.exact(
                    promql.share(
                        f"sum {entity} (\n  rate({spec.count}{failed}[{window}])\n)", calls(window)
                    )
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
            recording_rule(
                promql.slow_ratio(operation, window),
                promql.exact(
                    f"1 - (\n  sum {entity} (\n    rate({spec.bucket}{fast}[{window}])\n  )\n"
                    f"  /\n{promql.indent(calls(window), 2)}\n)"
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
    guard = f"{promql.calls(operation, window)} > {traffic_guard(window, objectives.min_calls)}"
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
            alert_rule(
                objectives,
                name,
                f'{promql.slow_ratio(operation, window)}{{le="{le}"}} > {allowed}\n'
                f"and ignoring (le)\n{guard}",
                for_,
                severity,
                f"{quantile} latency of {who} is above {in_words(bound)}.",
                f"{{{{ $value | humanizePercentage }}}} of calls to {who} took longer than "
                f"{in_words(bound)} over the last {window}; at most "
                f"{promql.num(objectives.slow_fraction_alert * 100)} % may "
                f"for {quantile} < {in_words(bound)}.",
            )
        )
    alert_ratio = promql.num(1 - objectives.success_rate_alert)
    rules.append(
        alert_rule(
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
    guard = traffic_guard(burn.short_window, objectives.min_calls)
    objective = promql.num(objectives.success_rate_target * 100)
    return alert_rule(
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
