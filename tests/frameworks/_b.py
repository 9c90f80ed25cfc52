"""Helpers for the CrewAI, smolagents, LlamaIndex and GenAI-span tests: read one series
by the names an integration records, and run an app under opentelemetry-instrument."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentstat import semconv
from agentstat.testing import sample
from tests.helpers import APPS, Samples, clean_env, free_port, run_instrumented_app


def agent(name: str, error: str = "", field: str = "count") -> float:
    """Count (or sum of seconds) of ``gen_ai.invoke_agent.duration`` for ``name``."""
    spec = semconv.AGENT_DURATION
    attributes = {semconv.GEN_AI_AGENT_NAME: name, semconv.ERROR_TYPE: error}
    return sample(spec, attributes, field=field) or 0.0


def tool(
    name: str, agent: str = "", error: str = "", tool_type: str = "function", field: str = "count"
) -> float:
    """Count (or sum) of ``gen_ai.execute_tool.duration`` for ``name`` run by ``agent``."""
    attributes = {
        semconv.GEN_AI_TOOL_NAME: name,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_TOOL_TYPE: tool_type,
        semconv.ERROR_TYPE: error,
    }
    return sample(semconv.TOOL_DURATION, attributes, field=field) or 0.0


def workflow(name: str, error: str = "", field: str = "count") -> float:
    """Count (or sum) of ``gen_ai.workflow.duration`` for ``name``."""
    attributes = {semconv.GEN_AI_WORKFLOW_NAME: name, semconv.ERROR_TYPE: error}
    return sample(semconv.WORKFLOW_DURATION, attributes, field=field) or 0.0


@contextmanager
def instrumented(instrumentor: Any) -> Iterator[Any]:
    """``instrumentor`` switched on for the block, off after it."""
    instrumentor.instrument()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def run_app(app: str, tmp_path: Path, **env: str) -> Samples:
    """Run ``tests/apps/<app>/app.py`` under opentelemetry-instrument; its /metrics."""
    app_dir = tmp_path / app
    shutil.copytree(APPS / app, app_dir)
    port = free_port()
    environment = clean_env(
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        CREWAI_DISABLE_TELEMETRY="true",
        CREWAI_DISABLE_TRACKING="true",
        CREWAI_TRACING_ENABLED="false",
        **env,
    )
    return run_instrumented_app(app_dir, environment, port, done_timeout=120)[0]


def series(
    samples: Samples, spec: semconv.MetricSpec, attributes: dict[str, str], suffix: str = "count"
) -> float:
    """One value of a scraped page: ``spec``'s ``_count`` (or ``_sum``) for these
    attributes (``gen_ai.operation.name`` filled in; empty values are absent labels)."""
    operation = next(o for o in semconv.OPERATIONS if o.duration is spec)
    wanted = {semconv.GEN_AI_OPERATION_NAME: operation.operation_name, **attributes}
    key = frozenset((spec.label(k), v) for k, v in wanted.items() if v)
    return samples.get((f"{spec.prometheus_name}_{suffix}", key), 0.0)


def tool_series(samples: Samples, name: str, agent: str, suffix: str = "count") -> float:
    """:func:`series` of ``gen_ai.execute_tool.duration`` for a function tool ``name``
    run by ``agent``."""
    attributes = {
        semconv.GEN_AI_TOOL_NAME: name,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_TOOL_TYPE: "function",
    }
    return series(samples, semconv.TOOL_DURATION, attributes, suffix)
