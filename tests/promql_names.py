"""Metric names a PromQL expression reads, and the names agentstat may legitimately read.

Not a PromQL parser: strings, label matchers, windows, grouping clauses and numbers are
removed, and what remains is functions, keywords and metric names."""

from __future__ import annotations

import re

from agentstat import semconv

_FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "avg_over_time",
    "histogram_quantile", "and", "or", "unless", "group_left", "group_right", "round",
    "min_over_time", "max_over_time", "vector", "clamp_max", "clamp_min", "time",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Identifiers in ``expr`` that are not functions or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|ignoring|on)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "", text)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if w not in _FUNCTIONS}


def table_names() -> set[str]:
    """Every series name the metric table says agentstat emits."""
    names = set()
    for spec in semconv.ALL_METRICS:
        names.add(spec.prometheus_name)
        if spec.instrument is semconv.Instrument.HISTOGRAM:
            names.update((spec.bucket, spec.count, spec.sum))
    return names
