"""Time to render /metrics, and the page size, for 100 and 1000 agent series.

Two registries hold the same series (``gen_ai.invoke_agent.duration`` with one
``gen_ai.agent.name`` per series, the same observations, the same 16 buckets), each
exposed by the OTel ``PrometheusMetricReader`` on its own prometheus_client registry:
one fed from agentstat's store through the bridge, one from a stock SDK histogram.
``generate_latest`` is what a Prometheus scrape of ``/metrics`` runs, minus HTTP.
A third row times only agentstat's share (store snapshot → OTel points), to show
where a render's time goes. Target: agentstat no slower than the stock reader at 1000.
"""

from __future__ import annotations

import random
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, generate_latest

from agentstat import semconv
from agentstat._metrics import bridge as _bridge
from agentstat._metrics.counts import CountsRegistry
from agentstat._metrics.producer import Producer
from agentstat._metrics.store import InProcess, Store
from benchmarks._harness import Case, Mode, Report, Row, measure, stmt_runner

SECTION = "scrape"
LIST = 20261128
OBSERVATIONS_PER_SERIES = 20
SPEC = semconv.AGENT_DURATION


def _observations(series: int) -> list[tuple[str, float]]:
    rng = random.Random(LIST)
    return [
        (f"agent-{i:05d}", rng.lognormvariate(-1.6, 1.0))
        for i in range(series)
        for _ in range(OBSERVATIONS_PER_SERIES)
    ]


def agentstat_registry(
    observations: list[tuple[str, float]],
) -> tuple[CollectorRegistry, MeterProvider, PrometheusMetricReader, Store]:
    """A /metrics registry fed only by a private agentstat store holding ``observations``."""
    store = Store()
    family = store.histogram(SPEC)
    for name, seconds in observations:
        family.series((semconv.OPERATION_INVOKE_AGENT, name, "")).observe(seconds)
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader])
    if _bridge.attach(provider, Producer(InProcess(store, CountsRegistry()))) is None:
        raise RuntimeError("agentstat could not attach its store to the SDK MeterProvider")
    return registry, provider, reader, store


def stock_registry(
    observations: list[tuple[str, float]],
) -> tuple[CollectorRegistry, MeterProvider]:
    """The same series recorded through a stock SDK histogram with the same buckets."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)],
        views=[
            View(
                instrument_name=SPEC.name,
                aggregation=ExplicitBucketHistogramAggregation(SPEC.buckets),
            )
        ],
    )
    # Same scope as agentstat's, so the two pages differ in nothing but their source.
    histogram = provider.get_meter(_bridge.SCOPE.name, _bridge.SCOPE.version).create_histogram(
        SPEC.name, unit=SPEC.unit, description=SPEC.description
    )
    attributes: dict[str, dict[str, Any]] = {}
    for name, seconds in observations:
        attrs = attributes.get(name)
        if attrs is None:
            attrs = attributes[name] = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
                semconv.GEN_AI_AGENT_NAME: name,
            }
        histogram.record(seconds, attrs)
    return registry, provider


def _bucket_lines(page: bytes) -> int:
    prefix = SPEC.bucket.encode() + b"{"
    return sum(1 for line in page.splitlines() if line.startswith(prefix))


def _samples(page: bytes) -> list[bytes]:
    """The page's lines minus target_info, whose service.instance.id is per provider."""
    return [line for line in page.splitlines() if b"target_info" not in line]


def run(mode: Mode, report: Report) -> None:
    """Render both registries at each size; report time, bytes and the target."""
    for series in mode.scrape_series:
        observations = _observations(series)
        ours, ours_provider, reader, store = agentstat_registry(observations)
        stock, stock_provider = stock_registry(observations)
        producer = Producer(InProcess(store, CountsRegistry()))
        ours_page, stock_page = generate_latest(ours), generate_latest(stock)
        if _samples(ours_page) != _samples(stock_page):
            raise RuntimeError(f"{series} series: agentstat's page differs from the stock page")
        stock_name = f"{series} series: stock SDK histogram + PrometheusMetricReader"
        ours_name = f"{series} series: agentstat store + PrometheusMetricReader"
        measure(
            SECTION,
            [
                Case(stock_name, stmt_runner("g(r)", {"g": generate_latest, "r": stock})),
                Case(ours_name, stmt_runner("g(r)", {"g": generate_latest, "r": ours}), stock_name),
                Case(
                    f"{series} series: agentstat share only (store → OTel points)",
                    stmt_runner("p.metrics(r)", {"p": producer, "r": reader}),
                    ours_name,
                ),
            ],
            mode,
            report,
        )
        lines = _bucket_lines(ours_page)
        report.add(
            Row(
                SECTION,
                f"{series} series: page size, stock",
                len(stock_page),
                "bytes",
                note=f"{lines} bucket lines",
            )
        )
        report.add(
            Row(
                SECTION,
                f"{series} series: page size, agentstat",
                len(ours_page),
                "bytes",
                baseline=f"{series} series: page size, stock",
                ratio=len(ours_page) / len(stock_page),
                note=f"{lines} bucket lines; same samples as stock",
            )
        )
        ours_ns = report.find(SECTION, ours_name).value
        stock_ns = report.find(SECTION, stock_name).value
        if series == max(mode.scrape_series):
            report.target(
                SECTION,
                f"{series}-series render no slower than stock",
                f"{ours_ns / 1e6:,.1f} ms",
                f"≤ {stock_ns / 1e6:,.1f} ms (stock)",
                ours_ns <= stock_ns,
                f"ratio {ours_ns / stock_ns:.2f}×",
            )
        ours_provider.shutdown()
        stock_provider.shutdown()
    _multiprocess_merge(mode, report, max(mode.scrape_series))


MEMBERS = 4


def _multiprocess_merge(mode: Mode, report: Report, series: int) -> None:
    """A multi-process page's extra work: read and add ``MEMBERS`` members' snapshot
    files of ``series`` series each (the OTel points and rendering come on top)."""
    import os
    import tempfile

    from agentstat._metrics import multiprocess
    from agentstat._metrics.snapshot import HistogramData, Snapshot, write_file

    name = SPEC.name
    bounds = {name: tuple(SPEC.buckets or ())}
    counts = [1] * (len(bounds[name]) + 1)
    member = Snapshot(
        bounds,
        {
            (name, (semconv.OPERATION_INVOKE_AGENT, f"agent-{i}", "")): HistogramData(
                counts, 1.0, 0.1, 0.9
            )
            for i in range(series)
        },
    )
    with tempfile.TemporaryDirectory(prefix="agentstat-bench-") as path:
        for i in range(MEMBERS):  # live pids (this one's), so nothing is compacted away
            write_file(
                os.path.join(path, f"p-{os.getppid()}-{i}.snap"),
                (os.getppid(), member.to_builtin()),
            )
        storage = multiprocess.MultiProcess(path, serving=True)
        measure(
            SECTION,
            [
                Case(
                    f"multi-process page: add {MEMBERS} members × {series} series",
                    stmt_runner("s.collect(all_processes=True)", {"s": storage}),
                )
            ],
            mode,
            report,
        )
