"""How right are percentiles read from the exported buckets?

A seeded lognormal latency sample (median 0.2 s, P95 ≈ 1 s, so it straddles the 0.5 s
and 1 s thresholds) is recorded into agentstat's store, exported to a /metrics page by
the OTel Prometheus reader, parsed back, and P50/P95/P99 are estimated exactly as
PromQL's ``histogram_quantile`` does (linear interpolation inside the bucket that holds
the rank). They are compared with the exact sample quantiles. The fractions of calls
above 0.5 s and 1.0 s are read from the ``le="0.5"``/``le="1.0"`` buckets and compared,
as integers, with the exact counts: they must be equal because both are bucket bounds.
"""

from __future__ import annotations

import math
import random

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat.ops import objectives
from benchmarks._harness import Mode, Report, Row
from benchmarks.scrape import agentstat_registry

SECTION = "accuracy"
LIST = 424242
MU = math.log(0.2)
SIGMA = 1.0
QUANTILES = (0.5, 0.95, 0.99)
THRESHOLDS = (objectives.LATENCY_P95_TARGET_SECONDS, objectives.LATENCY_P95_ALERT_SECONDS)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL's ``histogram_quantile`` on cumulative ``(le, count)`` pairs, +Inf last."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]  # the +Inf bucket: Prometheus answers the highest finite bound
    upper, count = buckets[index]
    lower, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    if index == 0 and upper <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / (count - below)


def exact_quantile(q: float, ordered: list[float]) -> float:
    """Nearest-rank quantile: the smallest value with at least ``q`` of the sample ≤ it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _exported_buckets(sample: list[float]) -> list[tuple[float, float]]:
    registry, provider, _reader, _store = agentstat_registry([("accuracy", v) for v in sample])
    try:
        page = generate_latest(registry).decode()
    finally:
        provider.shutdown()
    for family in text_string_to_metric_families(page):
        if family.name == semconv.AGENT_DURATION.prometheus_name:
            return [
                (float(s.labels["le"]), s.value)
                for s in family.samples
                if s.name == semconv.AGENT_DURATION.bucket
            ]
    raise RuntimeError("the exported page has no agent duration histogram")


def run(mode: Mode, report: Report) -> None:
    """Compare bucket-derived quantiles and threshold fractions with the exact ones."""
    rng = random.Random(LIST)
    sample = [rng.lognormvariate(MU, SIGMA) for _ in range(mode.accuracy_samples)]
    ordered = sorted(sample)
    buckets = _exported_buckets(sample)
    n = len(sample)
    bounds = sorted(b for b, _ in buckets)
    for q in QUANTILES:
        exact = exact_quantile(q, ordered)
        estimate = histogram_quantile(q, buckets)
        upper = next(b for b in bounds if b >= exact)
        lower = max((b for b in bounds if b < exact), default=0.0)
        error = (estimate - exact) / exact
        report.add(Row(SECTION, f"P{round(q * 100)} exact (n={n:,})", exact, "s"))
        report.add(
            Row(
                SECTION,
                f"P{round(q * 100)} from buckets (histogram_quantile)",
                estimate,
                "s",
                baseline=f"P{round(q * 100)} exact (n={n:,})",
                ratio=estimate / exact,
                note=f"error {error:+.1%}; bucket ({lower:g}, {upper:g}] bounds it",
            )
        )
    le = dict(buckets)
    for threshold in THRESHOLDS:
        exact_above = sum(1 for v in sample if v > threshold)
        bucket_above = n - int(le[threshold])
        report.add(
            Row(
                SECTION,
                f"fraction > {threshold:g} s, exact",
                100 * exact_above / n,
                "%",
                note=f"{exact_above:,} of {n:,}",
            )
        )
        report.add(
            Row(
                SECTION,
                f'fraction > {threshold:g} s, from le="{threshold}" bucket',
                100 * bucket_above / n,
                "%",
                note=f"{bucket_above:,} of {n:,}",
            )
        )
        report.target(
            SECTION,
            f"fraction above {threshold:g} s exact from buckets",
            f"{bucket_above:,} / {n:,}",
            f"= {exact_above:,} (exact)",
            bucket_above == exact_above,
            "bound is a bucket edge" if threshold in semconv.DURATION_BUCKETS else "not an edge",
        )
