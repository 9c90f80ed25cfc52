"""The served /metrics page: every negotiated format, gzip and name[] over real HTTP.

``agentstat.start_metrics_server`` renders agentstat's families straight from the store;
what a scraper gets must still carry them, the app's own OTel instruments, target_info
and prometheus_client's process collectors, and OTLP-style readers on the same provider
must still receive agentstat's metrics.
"""

from __future__ import annotations

import gzip
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import agentstat
from agentstat import semconv
from agentstat.exporter import MetricsServer

AGENT = semconv.AGENT_DURATION
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


def fetch(url: str, accept: str = "", gzipped: bool = False) -> tuple[str, dict[str, str]]:
    request = urllib.request.Request(url)
    if accept:
        request.add_header("Accept", accept)
    if gzipped:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        headers = {k.lower(): v for k, v in response.headers.items()}
    assert int(headers["content-length"]) == len(body)
    if gzipped:
        assert headers.get("content-encoding") == "gzip"
        body = gzip.decompress(body)
    return body.decode(), headers


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    served = agentstat.start_metrics_server(port=0, set_global=False)
    own = served.meter_provider.get_meter("shop").create_histogram("checkout.duration", unit="ms")
    own.record(12.0, {"step": "pay"})

    @agentstat.agent("served")
    def run() -> None:
        pass

    run()
    run()
    yield served
    served.shutdown()


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version=0.0.4"),
        ("text/plain; version=0.0.4", "text/plain; version=0.0.4"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
        (PROMETHEUS_3, "application/openmetrics-text; version=1.0.0"),
    ],
)
@pytest.mark.parametrize("gzipped", [False, True])
def test_served_page_has_every_part_in_each_format(
    server: MetricsServer, accept: str, content_type: str, gzipped: bool
) -> None:
    text, headers = fetch(server.url, accept, gzipped)
    assert headers["content-type"].startswith(content_type)
    if "openmetrics" in content_type:
        assert text.endswith("# EOF\n") and text.count("# EOF") == 1
        text = text.removesuffix("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    agent = families[AGENT.prometheus_name]
    label = AGENT.label(semconv.GEN_AI_AGENT_NAME)
    counts = [s for s in agent.samples if s.name == AGENT.count and s.labels[label] == "served"]
    assert [s.value for s in counts] == [2.0]
    assert counts[0].labels["otel_scope_name"] == "agentstat"
    assert "checkout_duration_milliseconds" in families
    assert any(name.startswith("target") for name in families)
    assert "service_instance_id" in text
    assert any(name.startswith("process_") for name in families)


def test_served_agentstat_lines_equal_the_stock_reader_lines(server: MetricsServer) -> None:
    text, _ = fetch(server.url)
    stock = generate_latest(server.reader._registry).decode()  # the bridge's path

    def ours(page: str) -> list[str]:
        return [line for line in page.splitlines() if line.startswith(AGENT.prometheus_name)]

    assert ours(text) and ours(text) == ours(stock)


def test_name_filter_works_for_the_whole_page() -> None:
    """``name[]`` keeps exactly the named samples, agentstat's included, as
    prometheus_client restricts a registry (one that admits collectors without names;
    in one that does not, the OTel reader's part is left out, as it always was)."""
    registry = CollectorRegistry(support_collectors_without_names=True)
    served = agentstat.start_metrics_server(port=0, registry=registry, set_global=False)
    try:
        own = served.meter_provider.get_meter("shop").create_counter("orders")
        own.add(2)

        @agentstat.agent("filtered")
        def run() -> None:
            pass

        run()
        names = [AGENT.count, "orders_total"]
        query = "&".join(f"name[]={name}" for name in names)
        for accept in ("", OPENMETRICS):
            text, _ = fetch(f"{served.url}?{query}", accept)
            sampled = {line.split("{")[0] for line in text.splitlines() if line[:1] != "#"}
            assert sampled == set(names)
            assert '"filtered"' in text
    finally:
        served.shutdown()


def test_an_otlp_style_reader_on_the_same_provider_still_gets_agentstats_metrics() -> None:
    """The app's provider has its own reader (OTLP); the endpoint is added to it."""
    other = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[other])
    served = agentstat.start_metrics_server(port=0, meter_provider=provider, set_global=False)
    try:

        @agentstat.agent("exported")
        def run() -> None:
            pass

        run()
        text, _ = fetch(served.url, OPENMETRICS)
        assert '"exported"' in text
        data = other.get_metrics_data()
        points = [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == AGENT.name
            for point in m.data.data_points
        ]
        assert [
            p.count for p in points if p.attributes.get(semconv.GEN_AI_AGENT_NAME) == "exported"
        ] == [1]
    finally:
        served.shutdown()
        provider.shutdown()
