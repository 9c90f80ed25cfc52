"""Each framework integration end to end: the real ``opentelemetry-instrument`` in a
subprocess runs an app (``tests/apps/fw_*``) that imports its framework after start-up
and contains no agentstat code; /metrics is read over HTTP."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agentstat import semconv
from agentstat.semconv import MetricSpec
from tests.helpers import Samples, clean_env, copy_app, free_port, run_instrumented_app

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION
WORKFLOW = semconv.WORKFLOW_DURATION
FIRST_CHUNK = semconv.AGENT_TIME_TO_FIRST_CHUNK


def _needs(module: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None,
        reason=f"{module} is not installed (see scripts/test)",
    )


def _key(spec: MetricSpec, field: str, **attributes: str) -> tuple[str, frozenset]:
    """The sample of ``spec``'s ``field`` with these attributes (``_`` for ``.``)."""
    operation = next(o for o in semconv.OPERATIONS if spec in (o.duration, o.time_to_first_chunk))
    labels = {semconv.prometheus_label(semconv.GEN_AI_OPERATION_NAME): operation.operation_name}
    labels.update({key: value for key, value in attributes.items() if value})
    return getattr(spec, field), frozenset(labels.items())


def _counts(samples: Samples, spec: MetricSpec, *labels: str) -> dict[tuple[str, ...], float]:
    """Every series of ``spec``: the values of ``labels`` ("" where absent) -> its count."""
    found: dict[tuple[str, ...], float] = {}
    for (name, pairs), value in samples.items():
        if name == spec.count:
            values = dict(pairs)
            key = tuple(values.get(label, "") for label in labels)
            found[key] = found.get(key, 0.0) + value
    return found


AGENTS = (AGENT, "gen_ai_agent_name", "error_type")
TOOLS = (TOOL, "gen_ai_tool_name", "gen_ai_agent_name", "gen_ai_tool_type", "error_type")
WORKFLOWS = (WORKFLOW, "gen_ai_workflow_name", "error_type")
FIRST_CHUNKS = (FIRST_CHUNK, "gen_ai_agent_name")


def _run(app: str, tmp_path: Path, **extra: str) -> Samples:
    port = free_port()
    env = clean_env(OTEL_EXPORTER_PROMETHEUS_PORT=str(port), **extra)
    # importing a framework takes seconds on a loaded machine
    samples, _ = run_instrumented_app(copy_app(app, tmp_path), env, port, done_timeout=90)
    return samples


@_needs("pydantic_ai")
def test_pydantic_ai_app_gets_exact_series_per_agent_and_tool(tmp_path: Path) -> None:
    """An unmodified pydantic-ai app under opentelemetry-instrument serves one series per
    agent (the unnamed one under its inferred name) and tool, exact counts, the error's
    class, and a stream timed to its end."""
    samples = _run("fw_pydantic_ai", tmp_path)
    assert _counts(samples, *AGENTS) == {("planner", ""): 3, ("helper", "RuntimeError"): 1}
    assert _counts(samples, *TOOLS) == {("lookup", "planner", "function", ""): 2}
    assert _counts(samples, *FIRST_CHUNKS) == {("planner",): 1}
    # the streamed run waits 0.15 s for its model: timed to the end of its block
    assert samples[_key(AGENT, "sum", gen_ai_agent_name="planner")] >= 0.15


@_needs("pydantic_ai")
def test_disabled_pydantic_ai_integration_records_nothing(tmp_path: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_pydantic_ai turns that integration
    off while the rest of agentstat still serves /metrics."""
    samples = _run(
        "fw_pydantic_ai", tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="agentstat_pydantic_ai"
    )
    assert _counts(samples, *AGENTS) == {}
    assert _counts(samples, *TOOLS) == {}
    assert any(name.startswith("python_gc") for name, _ in samples)  # the page is served


@_needs("agents")
def test_openai_agents_app_gets_exact_series_per_agent_tool_and_workflow(tmp_path: Path) -> None:
    """An unmodified openai-agents app: each agent of a handoff run once, the workflow
    once under its RunConfig name, tools with their agent, a streamed run with its time
    to first chunk."""
    samples = _run("fw_openai_agents", tmp_path)
    assert _counts(samples, *AGENTS) == {("triage", ""): 1, ("writer", ""): 1, ("planner", ""): 2}
    assert _counts(samples, *WORKFLOWS) == {("support", ""): 1}
    assert _counts(samples, *TOOLS) == {("lookup", "planner", "function", ""): 2}
    assert _counts(samples, *FIRST_CHUNKS) == {("planner",): 1}


@_needs("langgraph")
def test_langgraph_app_gets_exact_series_per_graph_tool_and_workflow(tmp_path: Path) -> None:
    """An unmodified LangGraph app: the team graph, each agent graph in it and alone,
    the tool with its agent, and one workflow for the graph of agents."""
    samples = _run("fw_langgraph", tmp_path)
    assert _counts(samples, *AGENTS) == {("team", ""): 1, ("researcher", ""): 3, ("writer", ""): 1}
    assert _counts(samples, *WORKFLOWS) == {("team", ""): 1}
    assert _counts(samples, *TOOLS) == {("lookup", "researcher", "function", ""): 1}
    assert _counts(samples, *FIRST_CHUNKS) == {("researcher",): 1}
