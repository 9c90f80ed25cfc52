"""What every generated rule is built from: the minimum-traffic guard, a recording rule,
an alert with mixin-style labels and annotations, a duration in words."""

from __future__ import annotations

from typing import Any

from agentstat.ops import promql
from agentstat.ops.objectives import (
    Objectives,
    duration_seconds,
)

Rule = dict[str, Any]

SCOPE_LABELS = "otel_scope_name, otel_scope_version, otel_scope_schema_url"


def traffic_guard(window: str, per_window: int) -> str:
    """``(N / seconds)``: at least N events within ``window``, as a per-second rate."""
    return f"({per_window} / {promql.num(duration_seconds(window))})"


def recording_rule(name: str, expr: str, labels: dict[str, str] | None = None) -> Rule:
    rule: Rule = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def alert_rule(
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


def in_words(seconds: float) -> str:
    return f"{promql.num(seconds * 1000)} ms" if seconds < 1 else f"{promql.num(seconds)} s"
