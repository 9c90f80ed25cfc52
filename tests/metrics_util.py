"""Reading recorded points back, for assertions on exact counts and buckets."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentstat import semconv
from agentstat._metrics.store import STORE
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


def stored(spec: MetricSpec) -> dict[frozenset, Any]:
    """Snapshots in the store for ``spec``, keyed by their attribute items."""
    return {frozenset(s.attributes.items()): s for s in STORE.histogram(spec).snapshots()}


def calls(spec: MetricSpec, name: str, error_type: str = "") -> int:
    """Calls of agent/tool ``name`` recorded in ``spec`` with this ``error.type``."""
    operation = {
        semconv.AGENT_DURATION.name: semconv.OPERATION_INVOKE_AGENT,
        semconv.TOOL_DURATION.name: semconv.OPERATION_EXECUTE_TOOL,
        semconv.AGENT_TIME_TO_FIRST_CHUNK.name: semconv.OPERATION_INVOKE_AGENT,
        semconv.TOOL_TIME_TO_FIRST_CHUNK.name: semconv.OPERATION_EXECUTE_TOOL,
    }[spec.name]
    wanted = {spec.attributes[0]: operation, spec.attributes[1]: name}
    if error_type:
        wanted[semconv.ERROR_TYPE] = error_type
    snap = stored(spec).get(frozenset(wanted.items()))
    return snap.count if snap else 0
