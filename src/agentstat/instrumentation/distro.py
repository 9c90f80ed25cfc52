"""The ``agentstat`` OpenTelemetry distro and configurator.

opentelemetry-distro defaults every exporter to OTLP and, when the OTLP exporter is not
installed, fails start-up so that no instrumentor loads at all. agentstat's distro sets
defaults that work after ``pip install agentstat`` alone: metrics to the Prometheus
endpoint on 127.0.0.1:9464, traces and logs off. Any variable you set wins.

agentstat's configurator sets up the SDK as opentelemetry-distro's does, with one change:
the ``prometheus`` metrics exporter is agentstat's endpoint
(:class:`agentstat.exporter.AutoEndpointReader`, entry point ``agentstat_prometheus``),
which serves every process of a pre-fork server on one page and reports a bad or taken
port in one line instead of failing the whole configuration.

If opentelemetry-distro is installed as well, choose ours with
``OTEL_PYTHON_DISTRO=agentstat`` (or set the three exporter variables yourself).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

DEFAULTS = {
    "OTEL_METRICS_EXPORTER": "prometheus",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
}

METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
STOCK_PROMETHEUS = "prometheus"
AGENTSTAT_PROMETHEUS = "agentstat_prometheus"


class AgentstatDistro(BaseDistro):  # type: ignore[misc]
    """Defaults for opentelemetry-instrument: a local Prometheus endpoint, nothing else."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)


class AgentstatConfigurator(_OTelSDKConfigurator):  # type: ignore[misc]
    """Sets up the OpenTelemetry SDK from the environment, agentstat's endpoint for
    ``prometheus``."""

    def _configure(self, **kwargs: Any) -> None:
        original = os.environ.get(METRICS_EXPORTER)
        names = [name.strip() for name in (original or "").split(",")]
        if STOCK_PROMETHEUS in names:
            # Only while the SDK reads it: children inherit the user's value.
            swapped = [AGENTSTAT_PROMETHEUS if n == STOCK_PROMETHEUS else n for n in names]
            os.environ[METRICS_EXPORTER] = ",".join(swapped)
        try:
            super()._configure(**kwargs)
        finally:
            if original is None:
                os.environ.pop(METRICS_EXPORTER, None)
            else:
                os.environ[METRICS_EXPORTER] = original
