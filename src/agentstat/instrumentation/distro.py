"""The ``agentstat`` OpenTelemetry distro and configurator.

opentelemetry-distro defaults every exporter to OTLP and, when the OTLP exporter is not
installed, fails start-up so that no instrumentor loads at all. agentstat's distro sets
defaults that work after ``pip install agentstat`` alone: metrics to the Prometheus
endpoint on 127.0.0.1:9464, traces and logs off. Any variable you set wins.

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


class AgentstatDistro(BaseDistro):  # type: ignore[misc]
    """Defaults for opentelemetry-instrument: a local Prometheus endpoint, nothing else."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)


class AgentstatConfigurator(_OTelSDKConfigurator):  # type: ignore[misc]
    """Sets up the OpenTelemetry SDK from the environment (as opentelemetry-distro's does)."""
