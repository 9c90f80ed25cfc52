"""The OTLP path: opentelemetry-instrument pushing agentstat's pre-aggregated histograms
to an OTLP/HTTP receiver (standing in for an OpenTelemetry Collector) on loopback."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from agentstat import semconv
from tests.helpers import BIN, clean_env, copy_app, running


class _Receiver(BaseHTTPRequestHandler):
    requests: list[ExportMetricsServiceRequest] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        type(self).requests.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _agent_points(requests: list[ExportMetricsServiceRequest]) -> dict[str, int]:
    """error.type ('' on success) -> count, from the newest export containing the metric."""
    for request in reversed(requests):
        counts: dict[str, int] = {}
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != semconv.AGENT_DURATION.name:
                        continue
                    assert list(metric.histogram.data_points[0].explicit_bounds) == list(
                        semconv.DURATION_BUCKETS
                    )
                    for point in metric.histogram.data_points:
                        attributes = {a.key: a.value.string_value for a in point.attributes}
                        counts[attributes.get(semconv.ERROR_TYPE, "")] = point.count
        if counts:
            return counts
    return {}


def test_histograms_reach_an_otlp_collector(tmp_path: Path) -> None:
    """With OTEL_METRICS_EXPORTER=otlp over HTTP, the collector receives exact counts."""
    copy_app("otlp", tmp_path)
    _Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = clean_env(
        AGENTSTAT_AGENTS="fleet_agents:plan",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://127.0.0.1:{server.server_port}/v1/metrics",
        OTEL_METRIC_EXPORT_INTERVAL="300",
    )
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "app.py", "done"]
    try:
        with running(args, env=env, cwd=tmp_path, log=tmp_path / "app.log"):
            deadline = time.monotonic() + 30
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                counts = _agent_points(_Receiver.requests)
                if (tmp_path / "done").exists() and counts == {"": 7, "ValueError": 1}:
                    break
                time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert counts == {"": 7, "ValueError": 1}, (tmp_path / "app.log").read_text()
