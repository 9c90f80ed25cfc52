"""The ``/metrics`` endpoint: under opentelemetry-instrument, and in code.

Under ``opentelemetry-instrument`` with ``OTEL_METRICS_EXPORTER=prometheus`` (agentstat's
distro default) the endpoint is :class:`AutoEndpointReader`, which agentstat's
configurator puts in place of the stock Prometheus reader. It serves
``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT`` and adds up **every
process started from the instrumented one** — gunicorn and uvicorn workers, pools,
Celery's prefork children — on one page (:mod:`agentstat._metrics.multiprocess`): a
process that finds the endpoint already served by its server joins it instead of
binding the port again. A bad or taken port is one line naming the setting, the value
and the reason; agentstat still records and the app runs (``AGENTSTAT_STRICT=1``: exit 2
before any user code).

In code::

    import agentstat

    server = agentstat.start_metrics_server(port=9464)   # binds 127.0.0.1
    ...
    server.shutdown()

It builds an SDK ``MeterProvider`` with the OpenTelemetry Prometheus reader (or adds the
reader to the ``meter_provider`` you pass), instruments agentstat on it, and serves a
registry of its own, so two servers never show a series twice. Both endpoints serve
that registry plus agentstat's own families rendered straight from the store
(:mod:`agentstat._metrics.page`): the same bytes as through the reader, in a few
milliseconds instead of hundreds, without stalling the app's threads. It serves this
process; ``all_processes=True`` serves every process started from this one too, as the
endpoint under opentelemetry-instrument does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
)

from agentstat import _http_server
from agentstat._metrics import bridge, multiprocess, page
from agentstat.environment_variables import AGENTSTAT_MULTIPROCESS_DIR
from agentstat.instrumentation import AgentstatInstrumentor
from agentstat.instrumentation.config import web_config_file as configured_web_config_file
from agentstat.web_config import WebConfig, load_web_config

_logger = logging.getLogger("agentstat")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
HOST_VARIABLE = "OTEL_EXPORTER_PROMETHEUS_HOST"
PORT_VARIABLE = "OTEL_EXPORTER_PROMETHEUS_PORT"


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


def _registry_of_its_own() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors the global one has."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        with contextlib.suppress(ValueError):  # a collector already registered
            registry.register(collector)
    return registry


def _served_elsewhere() -> str | None:
    """This process's directory, when another live process already serves it."""
    path = multiprocess.directory() or os.environ.get(AGENTSTAT_MULTIPROCESS_DIR, "")
    pid = multiprocess.server_pid(path) if path and os.path.isdir(path) else None
    return path if pid is not None and pid != os.getpid() else None


def _serve_all_processes(reader: PrometheusMetricReader, host: str, port: int) -> None:
    path = os.environ.get(AGENTSTAT_MULTIPROCESS_DIR, "").strip()
    if not path or not os.path.isdir(path):
        path = multiprocess.create()
    multiprocess.serve(path, host, port)
    bridge.serve_all_processes(reader)


def start_metrics_server(
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    *,
    meter_provider: MeterProvider | None = None,
    service_name: str | None = None,
    registry: CollectorRegistry | None = None,
    set_global: bool = True,
    all_processes: bool = False,
    web_config: WebConfig | str | None = None,
) -> MetricsServer:
    """Start a Prometheus endpoint for agentstat's metrics; ``port=0`` picks a free one.

    ``registry``: the prometheus_client registry to serve (default: a new one, with the
    process, platform and GC collectors). ``set_global`` makes the new provider the
    global OTel MeterProvider when none was set yet, so other instrumentations in the
    process export through it too. ``all_processes`` serves every process started from
    this one (forked or spawned, see :mod:`agentstat._metrics.multiprocess`). A taken
    port raises ``OSError`` before anything global changes. ``web_config`` (a
    :class:`~agentstat.web_config.WebConfig` or the path of a web configuration file;
    default: ``AGENTSTAT_WEB_CONFIG_FILE`` or ``web_config_file`` in ``[tool.agentstat]``)
    adds TLS, client certificates and basic auth; a bad file raises
    :class:`~agentstat.ConfigError` before anything is served.
    """
    if web_config is None:
        web_config = configured_web_config_file()
    if isinstance(web_config, str):
        web_config = load_web_config(web_config)
    registry = registry if registry is not None else _registry_of_its_own()
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
        server, thread = _http_server.serve(page.make_wsgi_app(registry), host, port, web_config)
    except OSError:
        # Nothing global has changed yet: undo the reader and let the caller decide.
        if owns:
            meter_provider.shutdown()
        else:
            meter_provider.remove_metric_reader(reader)
        raise
    bridge.render_directly(reader)
    actual_port = server.server_address[1]
    if all_processes and _served_elsewhere() is None:
        _serve_all_processes(reader, host, actual_port)
    if owns and set_global and not bridge.global_meter_provider_is_set():
        metrics.set_meter_provider(meter_provider)
    instrumentor = AgentstatInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.bind_meter_provider(meter_provider)
    else:
        instrumentor.instrument(meter_provider=meter_provider)
    scheme = web_config.scheme if web_config else "http"
    _logger.info("agentstat: serving metrics on %s://%s:%d/metrics", scheme, host, actual_port)
    return MetricsServer(host, actual_port, meter_provider, reader, server, thread, owns, scheme)


# ------------------------------------------------------------- opentelemetry-instrument


def parse_port(raw: str) -> tuple[int | None, str]:
    """``(port, "")`` for a valid port number, else ``(None, what is wrong)``."""
    try:
        port = int(raw.strip())
    except ValueError:
        return None, f"{PORT_VARIABLE}={raw!r} is not a port number (an integer from 0 to 65535)"
    if not 0 <= port <= 65535:
        return None, f"{PORT_VARIABLE}={raw!r} is out of range (0 to 65535)"
    return port, ""


def _startup_problem(line: str) -> None:
    """One line; under ``AGENTSTAT_STRICT`` it stops start-up with exit code 2."""
    from agentstat.instrumentation.config import load_config

    try:
        strict = load_config().strict
    except Exception:
        strict = False
    if strict:
        # Inside opentelemetry-instrument's sitecustomize: SystemExit would be a
        # "Fatal Python error" wall of text, and no user code has run yet.
        sys.stderr.write(f"{line} (AGENTSTAT_STRICT is set)\n")
        sys.stderr.flush()
        os._exit(2)
    _logger.error("%s", line)


class AutoEndpointReader(PrometheusMetricReader):
    """The Prometheus endpoint opentelemetry-instrument starts through agentstat's
    configurator (entry point ``agentstat_prometheus``); see the module docstring.

    It never raises: a bad setting or a taken port is one line, and the reader stays
    (collecting, not served), so everything else is still configured and instrumented.
    """

    def __init__(self) -> None:
        super().__init__(registry=REGISTRY)
        self.server: Any = None
        try:
            self._start()
        except Exception:
            _logger.warning("agentstat: could not start the metrics endpoint", exc_info=True)

    def _start(self) -> None:
        served = _served_elsewhere()
        if served is not None:  # a worker of a server whose endpoint is up: add to it
            multiprocess.join(served)
            return
        host = os.environ.get(HOST_VARIABLE, "localhost")
        raw = os.environ.get(PORT_VARIABLE, str(DEFAULT_PORT))
        port, problem = parse_port(raw)
        if port is not None:
            problem = self._serve(host, port, raw)
        # Even when it could not serve, this process claims the directory, so that its
        # spawned children join quietly instead of each repeating the line.
        _serve_all_processes(self, host, port or 0)
        if problem:
            _startup_problem(f"agentstat: {problem}; metrics are recorded but not served")

    def _serve(self, host: str, port: int, raw: str) -> str:
        """Start serving; "" or what went wrong."""
        web_config = None
        try:
            config_file = configured_web_config_file()
            if config_file:
                web_config = load_web_config(config_file)
        except Exception as exc:
            return str(exc).removeprefix("agentstat: ")
        try:
            app = page.make_wsgi_app(REGISTRY)
            self.server, _ = _http_server.serve(app, host, port, web_config)
        except OSError as exc:
            return (
                f"cannot serve metrics on {host}:{port} "
                f"({HOST_VARIABLE}={host!r}, {PORT_VARIABLE}={raw!r}): {exc.strerror or exc}"
            )
        bridge.render_directly(self)
        return ""
