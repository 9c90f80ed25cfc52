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
longest gap between two calls while another thread scrapes (:data:`SCRAPES` times) the
endpoint's WSGI app, once agentstat's and once prometheus_client's over the stock reader,
plus the same loop with no scrape (the machine's own noise). CPython hands the GIL to a
waiting thread only after its 5 ms switch interval, so a render that never lets go
stalls the app for ≥ 5 ms. A full (gen-2) garbage collection in either thread stalls the
app for as long as the whole heap takes to traverse, whoever allocated: such scrapes are
counted apart, and the rows of GC-tracked allocations per scrape show how much more
often the stock path brings them on. Target: the longest gap during agentstat's scrapes
≤ 5 ms.
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
SCRAPES = 20
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


def _longest_gaps(scrape: Callable[[], Any] | None, scrapes: int) -> list[tuple[float, bool]]:
    """Per scrape: the longest gap (seconds) between two calls of an ``@agentstat.agent``
    function looping in another thread, and whether a full (gen-2) garbage collection ran
    meanwhile (``scrape`` None: idle windows of ~20 ms). gc is only watched, never tuned."""
    import gc

    import agentstat

    @agentstat.agent("bench-stall")
    def step() -> None:
        pass

    longest = [0.0]
    full = [False]
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

    def watch(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") == 2:
            full[0] = True

    thread = threading.Thread(target=app, name="bench-app", daemon=True)
    thread.start()
    started.wait()
    gc.callbacks.append(watch)
    gaps = []
    try:
        for _ in range(scrapes):
            time.sleep(0.02)  # the app runs alone; then one window
            longest[0], full[0] = 0.0, False
            if scrape is None:
                time.sleep(0.02)
            else:
                scrape()
            gaps.append((longest[0], full[0]))
    finally:
        gc.callbacks.remove(watch)
        stop.set()
        thread.join()
    return gaps


def wsgi_scrape(app: Callable[..., Any], accept: str, encoding: str = "") -> Callable[[], int]:
    """One GET of ``app`` as the HTTP server makes it, minus the socket: bytes served."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "HTTP_ACCEPT": accept}
    if encoding:
        environ["HTTP_ACCEPT_ENCODING"] = encoding

    def scrape() -> int:
        return sum(map(len, app(dict(environ), lambda status, headers: None)))

    return scrape


def _stall_row(report: Report, name: str, gaps: list[tuple[float, bool]]) -> tuple[float, float]:
    """Add the row; (longest gap in ms without a full collection, longest overall)."""
    all_ms = [g * 1e3 for g, _ in gaps]
    clean = [g * 1e3 for g, full in gaps if not full] or [0.0]
    collected = sum(full for _, full in gaps)
    report.add(
        Row(
            SECTION,
            name,
            statistics.median(all_ms),
            "ms",
            min(all_ms),
            max(all_ms),
            rounds=len(gaps),
            note=(
                f"max {max(clean):.2f} ms over the {len(gaps) - collected} scrapes without a "
                f"gen-2 collection; {collected} had one (max {max(all_ms):.2f} ms)"
            ),
        )
    )
    return max(clean), max(all_ms)


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
    """The longest app-thread stall during scrapes of each endpoint's WSGI app (asked for
    OpenMetrics, as Prometheus does): agentstat's, the stock prometheus_client app over
    the stock reader, and no scrape at all."""
    from prometheus_client import make_wsgi_app

    scrapes = 2 if mode.name == "smoke" else SCRAPES
    accept = "application/openmetrics-text; version=1.0.0"
    idle = "no scrape (the machine's noise)"
    cases = {
        idle: None,
        "stock PrometheusMetricReader": wsgi_scrape(make_wsgi_app(stock), accept),
        "agentstat endpoint page": wsgi_scrape(_page.make_wsgi_app(ours), accept),
        "agentstat endpoint page, gzip": wsgi_scrape(_page.make_wsgi_app(ours), accept, "gzip"),
    }
    worst: dict[str, tuple[float, float]] = {}
    for what, scrape in cases.items():
        gaps = _longest_gaps(scrape, scrapes)
        name = f"{series} series: longest app stall per scrape, {what}"
        worst[what] = _stall_row(report, name, gaps)
    for what, scrape in cases.items():
        if scrape is not None:
            report.add(
                Row(
                    SECTION,
                    f"{series} series: GC-tracked allocations per scrape, {what}",
                    _tracked_allocations(scrape),
                    "objects",
                    note="net of frees, ≈ gen-0 collections × threshold: brings gen-2 ones on",
                )
            )
    ours_ms, ours_all = worst["agentstat endpoint page"]
    stock_ms, stock_all = worst["stock PrometheusMetricReader"]
    report.target(
        SECTION,
        f"{series}-series scrape stalls an app thread ≤ {STALL_TARGET_MS:g} ms",
        f"{ours_ms:.2f} ms (longest of {scrapes}, gen-2 GC aside)",
        f"≤ {STALL_TARGET_MS:g} ms (stock: {stock_ms:.1f} ms)",
        ours_ms <= STALL_TARGET_MS,
        f"with gen-2 GCs: ours {ours_all:.1f} ms, stock {stock_all:.1f} ms; "
        f"idle noise {worst[idle][1]:.2f} ms",
    )


MEMBERS = 4


def _multiprocess_merge(mode: Mode, report: Report, series: int) -> None:
    """A multi-process page: reading and adding ``MEMBERS`` members' snapshot files of
    ``series`` series each, then the whole page through the reader (what it cost before)
    and from agentstat's endpoint, and the app's longest stall during the latter."""
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
        registry = CollectorRegistry()
        reader = PrometheusMetricReader(registry=registry)
        provider = MeterProvider(metric_readers=[reader])
        _bridge.attach(provider, Producer(storage))
        _bridge.serve_all_processes(reader)
        merged = f"multi-process page: add {MEMBERS} members × {series} series"
        through_reader = f"multi-process page, {MEMBERS} × {series} series: through the reader"
        try:
            stock_page = generate_latest(registry)  # not yet rendered directly: the bridge's
            _bridge.render_directly(reader)
            _same_samples(series, _page.render_page(registry, generate_latest), stock_page, "mp")
            measure(
                SECTION,
                [
                    Case(merged, stmt_runner("s.collect(all_processes=True)", {"s": storage})),
                    Case(
                        through_reader,
                        stmt_runner("g(r)", {"g": generate_latest, "r": registry}),
                    ),
                    Case(
                        f"multi-process page, {MEMBERS} × {series} series: agentstat endpoint",
                        stmt_runner(
                            "p(r, g)", {"p": _page.render_page, "r": registry, "g": generate_latest}
                        ),
                        through_reader,
                    ),
                ],
                mode,
                report,
            )
            scrapes = 2 if mode.name == "smoke" else SCRAPES
            scrape = wsgi_scrape(_page.make_wsgi_app(registry), "")
            name = f"multi-process page, {MEMBERS} × {series} series: longest app stall"
            _stall_row(report, name, _longest_gaps(scrape, scrapes))
        finally:
            provider.shutdown()
