"""``agentstat check``: the objectives checked against live ``/metrics`` pages, no Prometheus.

Each page is read twice, ``interval`` seconds apart, so every number is a real rate
over that interval rather than a lifetime average. Verdicts use the same arithmetic as
the alert rules: latency from exact bucket fractions ("P95 > 1 s" = more than 5 % of
calls above the 1 s bucket, whichever way ``le`` spells it; exactly 95.0 % fast passes),
success rate without cancelled calls, hit rate per cache and tier, load per instance in
the busiest process, and even distribution per pool (the busiest healthy instance's load
per capacity over the pool's, from the mean of the two readings: a coarser sample than
the rule's 15-minute average, so judged with the same guards). P50/P95/P99 are
interpolated the way ``histogram_quantile`` does, for reading only. Several URLs (one
per worker) are summed, as the rules sum processes.

Why a little over 400 lines: reading, parsing and judging pages share the sample
layout above; the verdicts for agents, tools, caches and pools are one screen each.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat.environment_variables import AGENTSTAT_DURATION_BUCKETS
from agentstat.ops import promql
from agentstat.ops.objectives import Objectives
from agentstat.ops.scrape_client import ScrapeError, make_fetch
from agentstat.semconv import Operation

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]
SOURCE = "__source__"


class CheckError(ScrapeError):
    """A page could not be read or parsed; the message names the URL."""


class Status(IntEnum):
    """Verdict of one row, ordered by severity."""

    IDLE = 0
    OK = 1
    BELOW_TARGET = 2
    ALERT = 3

    @property
    def text(self) -> str:
        return {0: "idle", 1: "ok", 2: "MISSED TARGET", 3: "ALERT"}[self.value]


@dataclass
class Row:
    """One checked entity: an agent, tool, cache tier, balancer instance or pool."""

    kind: str
    name: str
    status: Status
    values: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Everything one check found."""

    urls: list[str]
    interval: float
    objectives: Objectives
    rows: list[Row]

    def breaches(self, fail_on: Status = Status.BELOW_TARGET) -> list[Row]:
        """Rows at or above ``fail_on``."""
        return [row for row in self.rows if row.status >= fail_on]


# ------------------------------------------------------------------------- scraping


#: Reads a page with no TLS files or credentials (``agentstat check`` builds its own
#: with :func:`~agentstat.ops.scrape_client.make_fetch` from its options).
fetch = make_fetch()


def parse(text: str, source: str) -> Samples:
    """Every sample of a page, keyed by sample name and sorted labels."""
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = tuple(sorted({**sample.labels, SOURCE: source}.items()))
                samples[(sample.name, labels)] = float(sample.value)
    except ValueError as exc:
        raise CheckError(f"{source} is not a Prometheus text page: {exc}") from exc
    return samples


def scrape(urls: Iterable[str], get: Callable[[str], str] = fetch) -> Samples:
    """One reading of every page (labels carry the URL, so processes never merge)."""
    samples: Samples = {}
    for url in urls:
        samples.update(parse(get(url), url))
    return samples


def deltas(before: Samples, after: Samples) -> Samples:
    """Counter increase per series; a series that is new or went down (a restarted
    process) counts from zero, as Prometheus's ``rate`` does."""
    out: Samples = {}
    for key, value in after.items():
        old = before.get(key)
        out[key] = value - old if old is not None and value >= old else value
    return out


def _select(samples: Samples, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(labels), value) for (sample, labels), value in samples.items() if sample == name]


# --------------------------------------------------------------------------- maths


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _share(part: float, total: float) -> float:
    return part / total if total else math.nan


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"


# ------------------------------------------------------------------------- verdicts


def _operation_rows(
    operation: Operation, delta: Samples, objectives: Objectives, seconds: float
) -> list[Row]:
    spec = operation.duration
    name_label, error_label = operation.name_label, operation.error_label
    cancelled = semconv.ERROR_TYPE_CANCELLED
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    calls: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    for labels, value in _select(delta, spec.bucket):
        if labels.get(error_label, "") == cancelled:
            continue
        # float() reads every spelling: le="1.0" (a scrape) and le="1" (a Collector)
        buckets[labels.get(name_label, "")][float(labels["le"])] += value
    for labels, value in _select(delta, spec.count):
        error = labels.get(error_label, "")
        if error == cancelled:
            continue
        calls[labels.get(name_label, "")] += value
        if error:
            errors[labels.get(name_label, "")] += value
    bounds = sorted({b for per_name in buckets.values() for b in per_name if math.isfinite(b)})
    for threshold in (objectives.latency_p95_target_seconds, objectives.latency_p95_alert_seconds):
        if bounds and threshold not in bounds:
            raise CheckError(
                f"{spec.bucket} has no bucket at {threshold} s, so the share of calls slower "
                f"than it cannot be counted; the pages' bounds are "
                f"{', '.join(promql.num(b) for b in bounds)}. Give the application and this "
                f"command the same bounds ({AGENTSTAT_DURATION_BUCKETS} or duration_buckets "
                "in [tool.agentstat])."
            )
    allowed = objectives.slow_fraction_alert
    rows = []
    for name in sorted(calls):
        total = calls[name]
        cumulative = [buckets[name].get(b, 0.0) for b in bounds] + [total]
        slow_target = 1 - _share(
            buckets[name].get(objectives.latency_p95_target_seconds, 0.0), total
        )
        slow_alert = 1 - _share(buckets[name].get(objectives.latency_p95_alert_seconds, 0.0), total)
        success = 1 - _share(errors[name], total)
        row = Row(operation.kind, name, Status.OK)
        q = objectives.latency_quantile
        row.values = {
            "calls/s": f"{total / seconds:.1f}",
            "p50": _ms(promql.histogram_quantile(bounds, cumulative, 0.5)),
            f"p{round(q * 100)}": _ms(promql.histogram_quantile(bounds, cumulative, q)),
            "p99": _ms(promql.histogram_quantile(bounds, cumulative, 0.99)),
            "success": _pct(success),
        }
        if total < objectives.min_calls:
            row.status = Status.IDLE
            row.reasons.append(f"only {total:.0f} calls (< {objectives.min_calls})")
        else:
            if promql.exceeds(slow_alert, allowed):
                row.status = max(row.status, Status.ALERT)
                row.reasons.append(
                    f"{slow_alert:.1%} of calls > {objectives.latency_p95_alert_seconds} s"
                )
            elif promql.exceeds(slow_target, allowed):
                row.status = max(row.status, Status.BELOW_TARGET)
                row.reasons.append(
                    f"{slow_target:.1%} of calls > {objectives.latency_p95_target_seconds} s"
                )
            if promql.falls_below(success, objectives.success_rate_alert):
                row.status = max(row.status, Status.ALERT)
                row.reasons.append(f"success {success:.1%} < {objectives.success_rate_alert:.0%}")
            elif promql.falls_below(success, objectives.success_rate_target):
                row.status = max(row.status, Status.BELOW_TARGET)
                row.reasons.append(f"success {success:.1%} < {objectives.success_rate_target:.0%}")
        rows.append(row)
    return rows


def _cache_rows(delta: Samples, objectives: Objectives) -> list[Row]:
    spec = semconv.CACHE_LOOKUPS
    name_l = spec.label(semconv.CACHE_NAME)
    tier_l = spec.label(semconv.CACHE_TIER)
    result_l = spec.label(semconv.CACHE_RESULT)
    hits: dict[tuple[str, str], float] = defaultdict(float)
    total: dict[tuple[str, str], float] = defaultdict(float)
    for labels, value in _select(delta, spec.prometheus_name):
        key = (labels.get(name_l, ""), labels.get(tier_l, ""))
        total[key] += value
        if labels.get(result_l) == semconv.CACHE_RESULT_HIT:
            hits[key] += value
    rows = []
    for (name, tier), lookups in sorted(total.items()):
        rate = hits[(name, tier)] / lookups if lookups else math.nan
        row = Row("cache", f"{name}/{tier}" if tier else name, Status.OK)
        row.values = {"lookups": f"{lookups:.0f}", "hit rate": _pct(rate)}
        if tier not in objectives.cache_alert_tiers:
            row.reasons.append("single tier: shown, not judged")
        elif lookups < objectives.min_calls:
            row.status = Status.IDLE
            row.reasons.append(f"only {lookups:.0f} lookups (< {objectives.min_calls})")
        elif promql.falls_below(rate, objectives.cache_hit_rate_alert):
            row.status = Status.ALERT
            row.reasons.append(f"hit rate {rate:.1%} < {objectives.cache_hit_rate_alert:.0%}")
        elif promql.falls_below(rate, objectives.cache_hit_rate_target):
            row.status = Status.BELOW_TARGET
            row.reasons.append(f"hit rate {rate:.1%} < {objectives.cache_hit_rate_target:.0%}")
        rows.append(row)
    return rows


def _imbalance(
    before: Samples, after: Samples, delta: Samples, objectives: Objectives, seconds: float
) -> dict[str, tuple[float, float, float]]:
    """Per pool: (busiest healthy instance's utilisation over the pool's, the busiest
    one's utilisation, selections per second), as the even-distribution rule computes
    them, from the mean of the two readings of every instance healthy in both."""
    pool_l = semconv.INSTANCE_LOAD.label(semconv.POOL_NAME)
    inst_l = semconv.INSTANCE_LOAD.label(semconv.INSTANCE_ID)

    def summed(samples: Samples, spec: semconv.MetricSpec) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = defaultdict(float)
        for labels, value in _select(samples, spec.prometheus_name):
            out[(labels.get(pool_l, ""), labels.get(inst_l, ""))] += value
        return out

    healthy_everywhere: dict[tuple[str, str], bool] = {}
    for samples in (before, after):
        for labels, value in _select(samples, semconv.INSTANCE_HEALTHY.prometheus_name):
            key = (labels.get(pool_l, ""), labels.get(inst_l, ""))
            healthy_everywhere[key] = healthy_everywhere.get(key, True) and value == 1
    load: dict[tuple[str, str], float] = defaultdict(float)
    capacity: dict[tuple[str, str], float] = defaultdict(float)
    for samples in (before, after):
        for key, value in summed(samples, semconv.INSTANCE_LOAD).items():
            load[key] += value / 2
        for key, value in summed(samples, semconv.INSTANCE_CAPACITY).items():
            capacity[key] += value / 2
    selections: dict[str, float] = defaultdict(float)
    for (pool, _instance), value in summed(delta, semconv.BALANCER_SELECTIONS).items():
        selections[pool] += value / seconds
    pools: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key, ok in healthy_everywhere.items():
        if ok and capacity.get(key):
            pools[key[0]].append((load[key], capacity[key]))
    out = {}
    for pool, instances in pools.items():
        pool_utilisation = sum(u for u, _ in instances) / sum(c for _, c in instances)
        busiest = max(u / c for u, c in instances)
        ratio = busiest / pool_utilisation if pool_utilisation else math.nan
        out[pool] = (ratio, busiest, selections[pool])
    return out


def _balancer_rows(
    before: Samples, now: Samples, delta: Samples, objectives: Objectives, seconds: float
) -> list[Row]:
    load_spec = semconv.INSTANCE_LOAD
    pool_l = load_spec.label(semconv.POOL_NAME)
    inst_l = load_spec.label(semconv.INSTANCE_ID)

    pid_l = semconv.prometheus_label(semconv.PROCESS_PID)

    def keyed(name: str) -> dict[tuple[str, str, tuple[str, str]], float]:
        """Per (pool, instance, process): a page (its URL), and on a page that merges a
        server's workers, each worker (``process_pid``)."""
        out: dict[tuple[str, str, tuple[str, str]], float] = defaultdict(float)
        for labels, value in _select(now, name):
            process = (labels[SOURCE], labels.get(pid_l, ""))
            out[(labels.get(pool_l, ""), labels.get(inst_l, ""), process)] += value
        return out

    load = keyed(load_spec.prometheus_name)
    capacity = keyed(semconv.INSTANCE_CAPACITY.prometheus_name)
    healthy = keyed(semconv.INSTANCE_HEALTHY.prometheus_name)
    utilisation: dict[tuple[str, str], float] = {}
    for (pool, instance, source), used in load.items():
        cap = capacity.get((pool, instance, source), 0.0)
        ratio = used / cap if cap else (math.inf if used else 0.0)
        utilisation[(pool, instance)] = max(utilisation.get((pool, instance), 0.0), ratio)
    rows = []
    for (pool, instance), ratio in sorted(utilisation.items()):
        row = Row("instance", f"{pool}/{instance}", Status.OK, {"load": _pct(ratio)})
        if promql.exceeds(ratio, objectives.instance_load_alert):
            row.status = Status.ALERT
            row.reasons.append(f"load {ratio:.0%} > {objectives.instance_load_alert:.0%}")
        rows.append(row)
    healthy_per_process: dict[str, dict[tuple[str, str], float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for (pool, _instance, source), value in healthy.items():
        healthy_per_process[pool][source] += value
    rejected: dict[str, float] = defaultdict(float)
    for labels, value in _select(delta, semconv.BALANCER_REJECTIONS.prometheus_name):
        rejected[labels.get(pool_l, "")] += value
    uneven = _imbalance(before, now, delta, objectives, seconds)
    for pool in sorted(set(healthy_per_process) | set(rejected)):
        fewest = min(healthy_per_process[pool].values(), default=math.nan)
        ratio, busiest, per_second = uneven.get(pool, (math.nan, math.nan, 0.0))
        row = Row("pool", pool, Status.OK)
        row.values = {
            "healthy": "-" if math.isnan(fewest) else f"{fewest:.0f}",
            "rejected": f"{rejected[pool]:.0f}",
            "busiest": "-" if math.isnan(ratio) else f"{ratio:.2f}x",
        }
        if fewest == 0:
            row.status = Status.ALERT
            row.reasons.append("a process sees no healthy instance")
        if (
            promql.exceeds(ratio, objectives.imbalance_alert)
            and busiest >= objectives.imbalance_min_utilization
            and per_second >= objectives.imbalance_min_selections
        ):
            # a warning in the rules (AgentstatPoolLoadUneven), so not an alert here
            row.status = max(row.status, Status.BELOW_TARGET)
            row.reasons.append(
                f"busiest instance at {ratio:.2f}x the pool's load per capacity "
                f"(> {promql.num(objectives.imbalance_alert)}x)"
            )
        if rejected[pool] > 0:
            # a warning in the rules (AgentstatBalancerRejecting), so not an alert here
            row.status = max(row.status, Status.BELOW_TARGET)
            row.reasons.append(f"{rejected[pool]:.0f} acquisitions rejected")
        rows.append(row)
    return rows


def evaluate(before: Samples, after: Samples, seconds: float, objectives: Objectives) -> list[Row]:
    """Rows for every agent, tool, cache tier, instance and pool found on the pages."""
    delta = deltas(before, after)
    return [
        *_operation_rows(semconv.AGENT_OPERATION, delta, objectives, seconds),
        *_operation_rows(semconv.TOOL_OPERATION, delta, objectives, seconds),
        *_cache_rows(delta, objectives),
        *_balancer_rows(before, after, delta, objectives, seconds),
    ]


def run_check(
    urls: list[str],
    interval: float,
    objectives: Objectives | None = None,
    get: Callable[[str], str] = fetch,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Read every page, wait ``interval`` seconds, read again, judge the difference."""
    objectives = objectives or Objectives()
    started = time.monotonic()
    before = scrape(urls, get)
    sleep(interval)
    after = scrape(urls, get)
    seconds = max(time.monotonic() - started, 1e-9)
    return Report(urls, seconds, objectives, evaluate(before, after, seconds, objectives))


def format_report(report: Report) -> str:
    """A plain-text table, one section per kind."""
    t = report.objectives
    lines = [
        f"agentstat check: {len(report.urls)} page(s), {report.interval:.1f} s between readings",
        f"targets: P{round(t.latency_quantile * 100)} < {t.latency_p95_target_seconds} s "
        f"(alert > {t.latency_p95_alert_seconds} s), success >= {t.success_rate_target:.0%} "
        f"(alert < {t.success_rate_alert:.0%}), cache hit >= {t.cache_hit_rate_target:.0%} "
        f"(alert < {t.cache_hit_rate_alert:.0%}), instance load <= {t.instance_load_alert:.0%}, "
        f"busiest instance <= {promql.num(t.imbalance_alert)}x its pool's load per capacity",
    ]
    if not report.rows:
        lines.append("no agentstat metrics found on the page(s)")
    kinds: dict[str, list[Row]] = {}
    for row in report.rows:
        kinds.setdefault(row.kind, []).append(row)
    for kind, rows in kinds.items():
        columns = list(rows[0].values)
        width = max(len(kind), *(len(r.name) for r in rows))
        lines.append("")
        lines.append(
            f"{kind.upper():<{width}}  " + "".join(f"{c.upper():>10}" for c in columns) + "  STATUS"
        )
        for row in rows:
            cells = "".join(f"{row.values.get(c, ''):>10}" for c in columns)
            reason = f" ({'; '.join(row.reasons)})" if row.reasons else ""
            lines.append(f"{row.name:<{width}}  {cells}  {row.status.text}{reason}")
    breaches = report.breaches()
    lines.append("")
    lines.append(f"{len(breaches)} breach(es)" if breaches else "all targets met")
    return "\n".join(lines)
