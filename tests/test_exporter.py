"""start_metrics_server: the code-first endpoint, and the cost of importing agentstat."""

from __future__ import annotations

import subprocess
import sys
import urllib.error

import pytest
from prometheus_client import CollectorRegistry

import agentstat
from agentstat import semconv
from tests.helpers import http_get


def test_endpoint_serves_decorated_calls_on_loopback_and_shuts_down() -> None:
    """A decorated agent's calls appear on the helper's endpoint, bound to 127.0.0.1."""

    @agentstat.agent("code_first")
    def run() -> int:
        return 1

    server = agentstat.start_metrics_server(port=0, registry=CollectorRegistry(), set_global=False)
    try:
        assert server.host == "127.0.0.1"
        run()
        run()
        page = http_get(server.url)
        assert f"{semconv.AGENT_DURATION.count}{{" in page
        line = next(
            line
            for line in page.splitlines()
            if line.startswith(semconv.AGENT_DURATION.count) and '"code_first"' in line
        )
        assert line.endswith(" 2.0")
    finally:
        server.shutdown()
    with pytest.raises(urllib.error.URLError):
        http_get(server.url, timeout=2)


def test_import_agentstat_stays_light() -> None:
    """`import agentstat` loads neither the OTel SDK, wrapt nor the exporter."""
    code = (
        "import sys, agentstat; "
        "print(','.join(m for m in ('opentelemetry.sdk', 'wrapt', 'prometheus_client', 'click') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_taken_port_raises_oserror_and_changes_nothing_global() -> None:
    """A taken port raises OSError before the global MeterProvider or instrumentation change."""
    import socket

    from opentelemetry import metrics

    from agentstat.instrumentation import AgentstatInstrumentor

    before = metrics.get_meter_provider()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(OSError):
            agentstat.start_metrics_server(
                port=holder.getsockname()[1], registry=CollectorRegistry()
            )
    assert metrics.get_meter_provider() is before
    assert not AgentstatInstrumentor().is_instrumented_by_opentelemetry
