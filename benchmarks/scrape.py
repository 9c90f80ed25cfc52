"""Time to render /metrics, the page size, and how long a scrape stalls the app.

Two registries hold the same series (``gen_ai.invoke_agent.duration`` with one
``gen_ai.agent.name`` per series, the same observations, the same 16 buckets), each
exposed by the OTel ``PrometheusMetricReader`` on its own prometheus_client registry:
one fed from agentstat's store through the bridge, one from a stock SDK histogram.
``generate_latest`` is what a Prometheus scrape of ``/metrics`` runs, minus HTTP.

Rows per size: the stock reader; agentstat's endpoint page
(:func:`agentstat._metrics.page.render_page`: the registry, plus agentstat's families
rendered straight from the store, with its GIL pauses), in text and OpenMetrics;
agentstat through the reader (what OTLP and other readers still get); and agentstat's
share of that (store snapshot → OTel points). Both pages are checked equal, sample for
sample, before anything is timed. Target: the endpoint page ≤ ¼ of stock at 1000.

Stall: one app thread calls an ``@agentstat.agent`` function in a loop and records the
longest gap between two calls while another thread scrapes (:data:`SCRAPES` times), once
with agentstat's page and once with the stock reader, plus the same loop with no scrape
(the machine's own noise). CPython hands the GIL to a waiting thread only after its 5 ms
switch interval, so a render that never lets go stalls the app for ≥ 5 ms. Target: the
longest gap during agentstat's scrapes ≤ 5 ms.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from agentstat import semconv
from agentstat._metrics import bridge as _bridge
from agentstat._metrics import page as _page
from agentstat._metrics.counts import CountsRegistry
from agentstat._metrics.producer import Producer
from agentstat._metrics.store import InProcess, Store
from benchmarks._harness import Case, Mode, Report, Row, measure, stmt_runner

SECTION = "scrape"
LIST = 20261128
OBSERVATIONS_PER_SERIES = 20
SPEC = semconv.AGENT_DURATION
#: Scrapes per stall measurement (each one's longest app gap is kept).
SCRAPES = 12
STALL_TARGET_MS = 5.0


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


def _same_samples(series: int, ours: bytes, stock: bytes, what: str) -> None:
    if _samples(ours) != _samples(stock):
        raise RuntimeError(f"{series} series: agentstat's {what} page differs from the stock page")


def run(mode: Mode, report: Report) -> None:
    """Render both registries at each size; report time, bytes, targets and stalls."""
    for series in mode.scrape_series:
        observations = _observations(series)
        ours, ours_provider, reader, store = agentstat_registry(observations)
        stock, stock_provider = stock_registry(observations)
        producer = Producer(InProcess(store, CountsRegistry()))
        ours_page, stock_page = generate_latest(ours), generate_latest(stock)
        _same_samples(series, ours_page, stock_page, "reader")
        _bridge.render_directly(reader)  # ours: the endpoint's page renders it directly
        direct_page = _page.render_page(ours, generate_latest)
        _same_samples(series, direct_page, stock_page, "endpoint")
        direct_om = _page.render_page(ours, openmetrics_latest)
        _same_samples(series, direct_om, openmetrics_latest(stock), "OpenMetrics endpoint")
        stock_name = f"{series} series: stock SDK histogram + PrometheusMetricReader"
        direct_name = f"{series} series: agentstat endpoint page (store → text directly)"
        stock_om = f"{series} series: stock, OpenMetrics"
        ours_name = f"{series} series: agentstat store + PrometheusMetricReader (OTLP etc.)"
        page_env = {"p": _page.render_page, "r": ours}
        measure(
            SECTION,
            [
                Case(stock_name, stmt_runner("g(r)", {"g": generate_latest, "r": stock})),
                Case(
                    direct_name,
                    stmt_runner("p(r, g)", {**page_env, "g": generate_latest}),
                    stock_name,
                ),
                Case(stock_om, stmt_runner("g(r)", {"g": openmetrics_latest, "r": stock})),
                Case(
                    f"{series} series: agentstat endpoint page, OpenMetrics",
                    stmt_runner("p(r, g)", {**page_env, "g": openmetrics_latest}),
                    stock_om,
                ),
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
                len(direct_page),
                "bytes",
                baseline=f"{series} series: page size, stock",
                ratio=len(direct_page) / len(stock_page),
                note=f"{lines} bucket lines; same samples as stock",
            )
        )
        direct_ns = report.find(SECTION, direct_name).value
        stock_ns = report.find(SECTION, stock_name).value
        if series == max(mode.scrape_series):
            report.target(
                SECTION,
                f"{series}-series endpoint page ≤ ¼ of stock",
                f"{direct_ns / 1e6:,.1f} ms",
                f"≤ {stock_ns / 4e6:,.1f} ms (stock {stock_ns / 1e6:,.1f} ms / 4)",
                direct_ns <= stock_ns / 4,
                f"ratio {direct_ns / stock_ns:.3f}×",
            )
            _stalls(mode, report, series, ours, stock)
        ours_provider.shutdown()
        stock_provider.shutdown()
    _multiprocess_merge(mode, report, max(mode.scrape_series))


def _longest_gaps(scrape: Callable[[], Any] | None, scrapes: int) -> list[float]:
    """Seconds: per scrape, the longest gap between two calls of an ``@agentstat.agent``
    function looping in another thread (``scrape`` None: idle windows of ~20 ms)."""
    import agentstat

    @agentstat.agent("bench-stall")
    def step() -> None:
        pass

    longest = [0.0]
    stop = threading.Event()
    started = threading.Event()

    def app() -> None:
        last = time.perf_counter()
        started.set()
        while not stop.is_set():
            step()
            now = time.perf_counter()
            if now - last > longest[0]:
                longest[0] = now - last
            last = now

    thread = threading.Thread(target=app, name="bench-app", daemon=True)
    thread.start()
    started.wait()
    gaps = []
    try:
        for _ in range(scrapes):
            time.sleep(0.02)  # the app runs alone; then one window
            longest[0] = 0.0
            if scrape is None:
                time.sleep(0.02)
            else:
                scrape()
            gaps.append(longest[0])
    finally:
        stop.set()
        thread.join()
    return gaps


def _tracked_allocations(scrape: Callable[[], Any], scrapes: int = 5) -> float:
    """About how many GC-tracked objects one scrape allocates (net of those it frees
    before the next gen-0 collection): gen-0 collections times their threshold."""
    import gc

    gc.collect()
    before = gc.get_stats()[0]["collections"]
    for _ in range(scrapes):
        scrape()
    return (gc.get_stats()[0]["collections"] - before) * gc.get_threshold()[0] / scrapes


def _stalls(
    mode: Mode, report: Report, series: int, ours: CollectorRegistry, stock: CollectorRegistry
) -> None:
    """The longest app-thread stall during scrapes: agentstat's page, stock, no scrape."""
    scrapes = 2 if mode.name == "smoke" else SCRAPES
    idle = "no scrape (the machine's noise)"
    cases = {
        idle: None,
        "stock PrometheusMetricReader": lambda: generate_latest(stock),
        "agentstat endpoint page": lambda: _page.render_page(ours, openmetrics_latest),
    }
    worst: dict[str, float] = {}
    for what, scrape in cases.items():
        gaps = [g * 1e3 for g in _longest_gaps(scrape, scrapes)]
        worst[what] = max(gaps)
        report.add(
            Row(
                SECTION,
                f"{series} series: longest app stall per scrape, {what}",
                statistics.median(gaps),
                "ms",
                min(gaps),
                max(gaps),
                rounds=scrapes,
                note=f"max {max(gaps):.2f} ms over {scrapes} scrapes",
            )
        )
    for what, scrape in cases.items():
        if scrape is not None:
            report.add(
                Row(
                    SECTION,
                    f"{series} series: GC-tracked allocations per scrape, {what}",
                    _tracked_allocations(scrape),
                    "objects",
                    note="gen-0 collections × threshold: what brings gen-2 collections on",
                )
            )
    ours_ms = worst["agentstat endpoint page"]
    stock_ms = worst["stock PrometheusMetricReader"]
    report.target(
        SECTION,
        f"{series}-series scrape stalls an app thread ≤ {STALL_TARGET_MS:g} ms",
        f"{ours_ms:.2f} ms (longest of {scrapes})",
        f"≤ {STALL_TARGET_MS:g} ms (stock: {stock_ms:.1f} ms)",
        ours_ms <= STALL_TARGET_MS,
        f"idle noise {worst[idle]:.2f} ms",
    )


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
