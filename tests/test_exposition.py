"""agentstat's families rendered straight from the store are the stock reader's bytes.

Every test builds a real SDK MeterProvider with the OTel PrometheusMetricReader on a
registry of its own, attaches agentstat's producer through the bridge (reading a fixed
Snapshot), and compares the page the endpoint serves (``page.render_page``) with the
page the stock path produces for the same registry (``generate_latest``: bridge →
reader → prometheus_client) — in every format prometheus_client negotiates.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat._metrics import bridge, exposition, page
from agentstat._metrics.producer import Producer
from agentstat._metrics.snapshot import HistogramData, Snapshot

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION
LOOKUPS = semconv.CACHE_LOOKUPS
SIZE = semconv.CACHE_SIZE
HEALTHY = semconv.INSTANCE_HEALTHY
INVOKE = semconv.OPERATION_INVOKE_AGENT
NAME = AGENT.label(semconv.GEN_AI_AGENT_NAME)

ODD_NAMES = ('say "hi"', "back\\slash", "two\nlines", "ünïcødé ✓", "100%", "{braces}", "")

ACCEPT_HEADERS = (
    "",
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=dots",
    "application/openmetrics-text; version=1.0.0; escaping=values",
    "application/openmetrics-text; version=2.0.0; escaping=underscores",
    # What Prometheus 3 sends.
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
)


def _histogram(counts: list[int], total: float) -> HistogramData:
    return HistogramData(counts, total, 0.001, 9.0)


def _snapshot() -> Snapshot:
    bounds = {AGENT.name: AGENT.buckets, TOOL.name: TOOL.buckets}
    n = len(AGENT.buckets or ()) + 1
    histograms = {}
    for i, name in enumerate(ODD_NAMES):
        counts = [(i + j) % 3 for j in range(n)]
        histograms[(AGENT.name, (INVOKE, name, ""))] = _histogram(counts, 0.1 * i)
    histograms[(AGENT.name, (INVOKE, "failing", "TimeoutError"))] = _histogram([1] * n, 1e7)
    histograms[(AGENT.name, (INVOKE, "busy", ""))] = _histogram([400_000] * n, 123456.789)
    tool_values = tuple("search" if a == semconv.GEN_AI_TOOL_NAME else "" for a in TOOL.attributes)
    histograms[(TOOL.name, tool_values)] = _histogram([0] * n, 0.0)
    counters = {
        (LOOKUPS.name, ("prompts", "", semconv.CACHE_RESULT_HIT)): 5,
        (LOOKUPS.name, ('q"uote', "l1", semconv.CACHE_RESULT_MISS)): 2.5,
    }
    gauges = {
        (SIZE.name, ("prompts", ""), ""): 3,
        (SIZE.name, ("prompts", ""), "4242"): 7.0,
        (HEALTHY.name, ("pool", "a\\b"), "17"): 1,
    }
    return Snapshot(bounds, histograms, counters, gauges)


class FixedSource:
    """A storage (the ``Storage`` protocol) that always holds ``snapshot``."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.start_time_unix_nano = 1

    def collect(self, *, all_processes: bool) -> Snapshot:
        return self.snapshot


class Endpoint:
    """A registry, its reader on a provider with a user's instrument, agentstat attached."""

    def __init__(self, snapshot: Snapshot | None = None, **reader_options: Any) -> None:
        # Admits collectors without names, so name[] filters reach the OTel reader's part.
        self.registry = CollectorRegistry(support_collectors_without_names=True)
        self.reader = PrometheusMetricReader(registry=self.registry, **reader_options)
        self.other = InMemoryMetricReader()  # stands in for OTLP
        self.provider = MeterProvider(
            metric_readers=[self.reader, self.other],
            resource=Resource.create({"service.name": "shop"}),
        )
        self.producer = Producer(FixedSource(snapshot or _snapshot()))
        assert bridge.attach(self.provider, self.producer) is self.producer
        user = self.provider.get_meter("shop.checkout", "2.0")
        user.create_histogram("checkout.duration", unit="ms").record(12, {"step": "pay"})
        user.create_counter("orders").add(3)
        bridge.render_directly(self.reader)

    def stock(self, encoder: Any, names: list[str] | None = None) -> bytes:
        registry = self.registry.restricted_registry(names) if names else self.registry
        return encoder(registry)  # outside the endpoint: the bridge adds agentstat's

    def direct(self, encoder: Any, names: list[str] | None = None) -> bytes:
        return page.render_page(self.registry, encoder, names, pause=None)


@pytest.fixture
def endpoint() -> Any:
    made = Endpoint()
    yield made
    made.provider.shutdown()


def _families(text: bytes) -> list[tuple[str, str, str, list[Any]]]:
    parsed = text_string_to_metric_families(text.decode().removesuffix("# EOF\n"))
    return [(f.name, f.type, f.documentation, list(f.samples)) for f in parsed]


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_direct_page_is_byte_for_byte_the_stock_page_in_every_negotiated_format(
    endpoint: Endpoint, accept: str
) -> None:
    encoder, _ = choose_encoder(accept)
    stock = endpoint.stock(encoder)
    built: list[int] = []  # the producer builds OTel points only on the stock path
    original = endpoint.producer.metrics
    endpoint.producer.metrics = lambda *a, **k: built.append(1) or original(*a, **k)  # type: ignore[method-assign]
    direct = endpoint.direct(encoder)
    assert bool(built) is not exposition.dialect_of(encoder).direct
    assert direct.splitlines() == stock.splitlines()
    assert direct == stock
    assert b"invoke" in direct and b'"say' in direct  # agentstat's families are there


def test_direct_page_parses_to_the_stock_families_with_odd_label_values(
    endpoint: Endpoint,
) -> None:
    stock, direct = endpoint.stock(generate_latest), endpoint.direct(generate_latest)
    assert _families(direct) == _families(stock)
    names = {
        s.labels.get(NAME)
        for name, _, _, samples in _families(direct)
        for s in samples
        if name == AGENT.prometheus_name
    }
    assert set(ODD_NAMES) - {""} <= names
    text = direct.decode()
    assert f'{NAME}="say \\"hi\\""' in text
    assert f'{NAME}="back\\\\slash"' in text
    assert f'{NAME}="two\\nlines"' in text
    assert 'le="+Inf"' in text and 'le="0.005"' in text and 'le="1.0"' in text
    assert 'error_type=""' in text and 'error_type="TimeoutError"' in text
    assert 'otel_scope_name="agentstat"' in text and "otel_scope_version=" in text
    assert text.count("target_info{") == 1 and "service_instance_id=" in text
    assert 'process_pid="4242"' in text and f"{LOOKUPS.prometheus_name}{{" in text
    assert "checkout_duration_milliseconds_bucket{" in text and "orders_total" in text


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
@pytest.mark.parametrize(
    "names",
    [
        [AGENT.count],
        [AGENT.bucket, SIZE.prometheus_name, "target_info"],
        [LOOKUPS.prometheus_name, "orders_total"],
        ["nothing_by_that_name"],
    ],
)
def test_name_filter_keeps_the_stock_samples(
    endpoint: Endpoint, accept: str, names: list[str]
) -> None:
    encoder, _ = choose_encoder(accept)
    direct = endpoint.direct(encoder, names)
    assert direct == endpoint.stock(encoder, names)
    assert (b"_bucket{" in direct) is (AGENT.bucket in names)


def test_endpoint_page_leaves_other_readers_and_other_scrapes_unchanged(
    endpoint: Endpoint,
) -> None:
    """OTLP (an in-memory reader here) and a plain generate_latest of the same registry
    still get agentstat's metrics through the bridge, before and after direct renders."""
    before = endpoint.stock(generate_latest)
    endpoint.direct(generate_latest)
    assert endpoint.stock(generate_latest) == before
    assert AGENT.bucket.encode() in before
    data = endpoint.other.get_metrics_data()
    exported = {
        m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert {AGENT.name, TOOL.name, LOOKUPS.name, SIZE.name, "checkout.duration"} <= exported


def test_a_user_instrument_sharing_a_name_stays_one_family() -> None:
    """A user's histogram named like agentstat's: the reader merges both into one
    family, as before; the endpoint renders that family through the reader too."""
    made = Endpoint()
    try:
        own = made.provider.get_meter("mine").create_histogram(
            AGENT.name, unit=AGENT.unit, description=AGENT.description
        )
        own.record(0.2, {semconv.GEN_AI_AGENT_NAME: "own"})
        for accept in ("", "application/openmetrics-text"):
            encoder, _ = choose_encoder(accept)
            direct = made.direct(encoder)
            assert direct == made.stock(encoder)
            assert direct.count(f"# TYPE {AGENT.prometheus_name} histogram".encode()) == 1
    finally:
        made.provider.shutdown()


def test_uninstrumented_producer_renders_nothing_of_agentstats(endpoint: Endpoint) -> None:
    endpoint.producer.enabled = False
    direct = endpoint.direct(generate_latest)
    assert direct == endpoint.stock(generate_latest)
    assert AGENT.bucket.encode() not in direct and b"orders_total" in direct


def test_a_render_failure_is_logged_once_and_the_rest_is_served(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        start_time_unix_nano = 1

        def collect(self, *, all_processes: bool) -> Snapshot:
            raise RuntimeError("store unreadable")

    endpoint.producer.source = Broken()  # type: ignore[assignment]
    monkeypatch.setattr(page, "_failed", False)
    with caplog.at_level(logging.ERROR, logger="agentstat"):
        first = endpoint.direct(generate_latest)
        second = endpoint.direct(generate_latest)
    assert first == second
    assert b"target_info{" in first and b"checkout_duration_milliseconds_count" in first
    assert AGENT.bucket.encode() not in first
    assert [r.message for r in caplog.records].count(
        "agentstat: could not render its metrics; serving the rest"
    ) == 1


def test_reader_options_are_honoured() -> None:
    """A prefix, scope labels off and resource labels on: the reader's own choices."""
    made = Endpoint(
        prefix="acme",
        scope_info_enabled=False,
        resource_attribute_filter=lambda key: key == "service.name",
    )
    try:
        for accept in ("", "application/openmetrics-text"):
            encoder, _ = choose_encoder(accept)
            direct = made.direct(encoder)
            assert direct == made.stock(encoder)
            assert f"acme_{AGENT.bucket}{{".encode() in direct
            assert b"otel_scope_name" not in direct and b'service_name="shop"' in direct
    finally:
        made.provider.shutdown()


def test_label_strings_are_cached_and_dropped_when_the_store_restarts() -> None:
    renderer = exposition.Renderer()
    labels = exposition.Labels((("otel_scope_name", "agentstat"),))
    snapshot = _snapshot()
    first = renderer.render(snapshot, generate_latest, labels)
    cached = renderer._cached
    assert cached == len(snapshot.histograms) + len(snapshot.counters) + len(snapshot.gauges)
    assert renderer.render(snapshot, generate_latest, labels) == first
    assert renderer._cached == cached  # nothing new: every label string was reused
    renderer.reset_if(("store", 1))
    assert renderer._cached == 0
    assert renderer.render(snapshot, generate_latest, labels) == first


def test_multi_process_page_renders_directly_and_equals_the_stock_page(tmp_path: Any) -> None:
    """The all-processes page (members' files merged with this process's store) goes
    through the direct renderer and still equals the stock page, process_pid and all."""
    import os

    import agentstat
    from agentstat._metrics import multiprocess
    from agentstat._metrics.snapshot import write_file

    agentstat.agent("serving")(int)()
    member = _snapshot()
    alive = os.getppid()  # a live pid that is not this process
    write_file(str(tmp_path / f"p-{alive}-1.snap"), (alive, member.to_builtin()))
    made = Endpoint()
    try:
        made.producer.source = multiprocess.MultiProcess(str(tmp_path), serving=True)
        bridge.serve_all_processes(made.reader)
        built: list[int] = []
        original = made.producer.metrics
        made.producer.metrics = lambda *a, **k: built.append(1) or original(*a, **k)  # type: ignore[method-assign]
        for accept in ("", "application/openmetrics-text; version=1.0.0"):
            encoder, _ = choose_encoder(accept)
            direct = made.direct(encoder)
            assert not built
            assert direct == made.stock(encoder)
            assert f'process_pid="{alive}"'.encode() in direct
            assert f'{NAME}="serving"'.encode() in direct
            built.clear()
    finally:
        made.provider.shutdown()
