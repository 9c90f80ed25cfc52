"""Serve ``/metrics`` without opentelemetry-instrument.

::

    import agentstat

    server = agentstat.start_metrics_server(port=9464)   # binds 127.0.0.1
    ...
    server.shutdown()

It builds an SDK ``MeterProvider`` with the OpenTelemetry Prometheus reader (or adds the
reader to the ``meter_provider`` you pass), instruments agentstat on it, and serves
prometheus_client's HTTP endpoint. Under a pre-fork server (gunicorn) call it in each
worker after the fork (``post_fork``), each on its own port: an endpoint started in the
master would show only the master's data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from agentstat import _http_server
from agentstat.instrumentation import AgentstatInstrumentor
from agentstat.instrumentation.config import web_config_file as configured_web_config_file
from agentstat.web_config import WebConfig, load_web_config

_logger = logging.getLogger("agentstat")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464


@dataclass
class MetricsServer:
    """A running endpoint; ``url`` is where to scrape it."""

    host: str
    port: int
    meter_provider: MeterProvider
    reader: PrometheusMetricReader
    _server: Any = field(repr=False)
    _thread: Any = field(repr=False)
    _owns_provider: bool = field(repr=False, default=True)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and detach the reader (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._owns_provider:
            self.meter_provider.shutdown()
        else:
            self.meter_provider.remove_metric_reader(self.reader)


def start_metrics_server(
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    *,
    meter_provider: MeterProvider | None = None,
    service_name: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    set_global: bool = True,
    web_config: WebConfig | str | None = None,
) -> MetricsServer:
    """Start a Prometheus endpoint for agentstat's metrics; ``port=0`` picks a free one.

    ``set_global`` makes the new provider the global OTel MeterProvider (when none was
    set yet), so other instrumentations in the process export through it too.
    ``web_config`` (a :class:`~agentstat.web_config.WebConfig` or the path of a web
    configuration file; default: ``AGENTSTAT_WEB_CONFIG_FILE`` or ``web_config_file`` in
    ``[tool.agentstat]``) adds TLS, client
    certificates and basic auth; a bad file raises :class:`~agentstat.ConfigError`
    before anything is served.
    """
    if web_config is None:
        web_config = configured_web_config_file()
    if isinstance(web_config, str):
        web_config = load_web_config(web_config)
    reader = PrometheusMetricReader(registry=registry)
    owns = meter_provider is None
    if meter_provider is None:
        attributes = {"service.name": service_name} if service_name else {}
        meter_provider = MeterProvider(
            metric_readers=[reader], resource=Resource.create(attributes)
        )
    else:
        meter_provider.add_metric_reader(reader)
    try:
        server, thread = _http_server.serve(make_wsgi_app(registry), host, port, web_config)
    except OSError:
        # Nothing global has changed yet: undo the reader and let the caller decide.
        if owns:
            meter_provider.shutdown()
        else:
            meter_provider.remove_metric_reader(reader)
        raise
    if owns and set_global:
        metrics.set_meter_provider(meter_provider)
    instrumentor = AgentstatInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.bind_meter_provider(meter_provider)
    else:
        instrumentor.instrument(meter_provider=meter_provider)
    actual_port = server.server_address[1]
    _logger.info("agentstat: serving metrics on http://%s:%d/metrics", host, actual_port)
    scheme = web_config.scheme if web_config else "http"
    return MetricsServer(host, actual_port, meter_provider, reader, server, thread, owns, scheme)
