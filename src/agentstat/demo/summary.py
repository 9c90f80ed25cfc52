"""The live table ``agentstat demo`` prints, read from the fleet's own ``/metrics`` page.

Reading the page (rendered in process, as the endpoint renders it for a scrape), not
agentstat's internals, means the table shows exactly what a scrape sees, with the same
arithmetic as ``agentstat check`` and the dashboards: rates over the last interval,
P50/P95/P99 interpolated as ``histogram_quantile`` does, success without cancelled
calls, whole-cache hit rates and instance loads.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat.ops import objectives
from agentstat.ops.promql import histogram_quantile

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_page(text: str) -> Series:
    """Every sample of a page, keyed by name and sorted labels."""
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if v))
            series[(sample.name, labels)] = float(sample.value)
    return series


class Summary:
    """Renders one interval's table from two readings of the page."""

    def __init__(self, render_page: Callable[[], str]) -> None:
        self.render_page = render_page
        self._before: Series = {}

    def render(self, elapsed: float) -> str:
        try:
            now = parse_page(self.render_page())
        except ValueError as exc:
            return f"-- summary unavailable: the page did not parse: {exc}"
        delta = {key: value - self._before.get(key, 0.0) for key, value in now.items()}
        self._before = now
        return "\n".join([self._calls(delta, elapsed), self._resources(now, delta)])

    @staticmethod
    def _calls(delta: Series, elapsed: float) -> str:
        lines = [
            f"-- last {elapsed:.1f}s",
            f"   {'':6} {'name':12} {'calls/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'success':>8}",
        ]
        bounds = list(semconv.DURATION_BUCKETS)
        for operation in semconv.OPERATIONS:
            name_label, error_label = operation.name_label, operation.error_label
            buckets: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            totals: dict[str, float] = defaultdict(float)
            errors: dict[str, float] = defaultdict(float)
            for (sample, labels), value in delta.items():
                found = dict(labels)
                error = found.get(error_label, "")
                if error == semconv.ERROR_TYPE_CANCELLED or name_label not in found:
                    continue
                name = found[name_label]
                if sample == operation.duration.bucket:
                    buckets[name][found["le"]] += value
                elif sample == operation.duration.count:
                    totals[name] += value
                    if error:
                        errors[name] += value
            for name in sorted(totals):
                total = totals[name]
                if total <= 0:
                    continue
                cumulative = [buckets[name].get(semconv.le_label(b), 0.0) for b in bounds]
                p50, p95, p99 = (
                    histogram_quantile(bounds, [*cumulative, total], q) * 1000
                    for q in (0.5, 0.95, 0.99)
                )
                success = 100.0 * (total - errors[name]) / total
                slow = p95 > objectives.LATENCY_P95_TARGET_SECONDS * 1000
                flag = " !" if slow or success < objectives.SUCCESS_RATE_TARGET * 100 else ""
                lines.append(
                    f"   {operation.kind:6} {name:12} {total / max(elapsed, 1e-9):8.1f}"
                    f" {p50:6.0f}ms {p95:6.0f}ms {p99:6.0f}ms {success:7.2f}%{flag}"
                )
        return "\n".join(lines)

    @staticmethod
    def _resources(now: Series, delta: Series) -> str:
        lookups = semconv.CACHE_LOOKUPS
        name_l, tier_l = lookups.label(semconv.CACHE_NAME), lookups.label(semconv.CACHE_TIER)
        result_l = lookups.label(semconv.CACHE_RESULT)
        hits: dict[str, float] = defaultdict(float)
        seen: dict[str, float] = defaultdict(float)
        for (sample, labels), value in delta.items():
            found = dict(labels)
            if sample != lookups.prometheus_name or found.get(tier_l, "") not in ("", "all"):
                continue
            seen[found[name_l]] += value
            if found.get(result_l) == semconv.CACHE_RESULT_HIT:
                hits[found[name_l]] += value
        caches = []
        for name in sorted(seen):
            rate = 100.0 * hits[name] / seen[name] if seen[name] else math.nan
            flag = " !" if rate < objectives.CACHE_HIT_RATE_TARGET * 100 else ""
            caches.append(f"{name} {rate:5.1f}%{flag}")
        load_spec = semconv.INSTANCE_LOAD
        instance_l = load_spec.label(semconv.INSTANCE_ID)
        loads = []
        for (sample, labels), load in sorted(now.items()):
            if sample != load_spec.prometheus_name:
                continue
            capacity = now.get((semconv.INSTANCE_CAPACITY.prometheus_name, labels), 0.0)
            healthy = now.get((semconv.INSTANCE_HEALTHY.prometheus_name, labels), 1.0)
            share = 100.0 * load / capacity if capacity else math.nan
            mark = "" if healthy else " (down)"
            loads.append(f"{dict(labels)[instance_l]} {share:3.0f}%{mark}")
        return f"   caches: {'  '.join(caches)}\n   load:   {'  '.join(loads)}"
