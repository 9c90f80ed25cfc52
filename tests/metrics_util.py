"""Reading exported points back from an OpenTelemetry reader, for tests that prove what
leaves the process (``agentstat.testing`` reads what was recorded)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentstat.semconv import MetricSpec


def points(reader: InMemoryMetricReader, spec: MetricSpec) -> list[Any]:
    """Every data point of ``spec`` in one collection of ``reader``."""
    data = reader.get_metrics_data()
    found = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == spec.name:
                    found.extend(metric.data.data_points)
    return found
