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


def _count(samples: Samples, spec: MetricSpec, **attributes: str) -> float:
    return samples.get(_key(spec, "count", **attributes), 0.0)


def _tool_count(samples: Samples, tool: str, agent: str) -> float:
    """Calls of the function tool ``tool`` run by ``agent``."""
    attributes = {"gen_ai_tool_name": tool, "gen_ai_agent_name": agent}
    return _count(samples, TOOL, gen_ai_tool_type="function", **attributes)


def _names(samples: Samples, spec: MetricSpec, label: str) -> set[str]:
    return {dict(labels).get(label, "") for name, labels in samples if name == spec.count}


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
    assert _count(samples, AGENT, gen_ai_agent_name="planner") == 3
    assert _count(samples, AGENT, gen_ai_agent_name="helper", error_type="RuntimeError") == 1
    assert _names(samples, AGENT, "gen_ai_agent_name") == {"planner", "helper"}
    assert _tool_count(samples, "lookup", "planner") == 2
    assert _count(samples, FIRST_CHUNK, gen_ai_agent_name="planner") == 1
    # the streamed run waits 0.15 s for its model: timed to the end of its block
    assert samples[_key(AGENT, "sum", gen_ai_agent_name="planner")] >= 0.15


@_needs("pydantic_ai")
def test_disabled_pydantic_ai_integration_records_nothing(tmp_path: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_pydantic_ai turns that integration
    off while the rest of agentstat still serves /metrics."""
    samples = _run(
        "fw_pydantic_ai", tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="agentstat_pydantic_ai"
    )
    assert _names(samples, AGENT, "gen_ai_agent_name") == set()
    assert _names(samples, TOOL, "gen_ai_tool_name") == set()
    assert any(name.startswith("python_gc") for name, _ in samples)  # the page is served


@_needs("agents")
def test_openai_agents_app_gets_exact_series_per_agent_tool_and_workflow(tmp_path: Path) -> None:
    """An unmodified openai-agents app: each agent of a handoff run once, the workflow
    once under its RunConfig name, tools with their agent, a streamed run with its time
    to first chunk."""
    samples = _run("fw_openai_agents", tmp_path)
    assert _count(samples, AGENT, gen_ai_agent_name="triage") == 1
    assert _count(samples, AGENT, gen_ai_agent_name="writer") == 1
    assert _count(samples, AGENT, gen_ai_agent_name="planner") == 2
    assert _names(samples, AGENT, "gen_ai_agent_name") == {"triage", "writer", "planner"}
    assert _count(samples, WORKFLOW, gen_ai_workflow_name="support") == 1
    assert _names(samples, WORKFLOW, "gen_ai_workflow_name") == {"support"}
    assert _tool_count(samples, "lookup", "planner") == 2
    assert _count(samples, FIRST_CHUNK, gen_ai_agent_name="planner") == 1


@_needs("langgraph")
def test_langgraph_app_gets_exact_series_per_graph_tool_and_workflow(tmp_path: Path) -> None:
    """An unmodified LangGraph app: the team graph, each agent graph in it and alone,
    the tool with its agent, and one workflow for the graph of agents."""
    samples = _run("fw_langgraph", tmp_path)
    assert _count(samples, AGENT, gen_ai_agent_name="team") == 1
    assert _count(samples, AGENT, gen_ai_agent_name="researcher") == 3
    assert _count(samples, AGENT, gen_ai_agent_name="writer") == 1
    assert _names(samples, AGENT, "gen_ai_agent_name") == {"team", "researcher", "writer"}
    assert _count(samples, WORKFLOW, gen_ai_workflow_name="team") == 1
    assert _names(samples, WORKFLOW, "gen_ai_workflow_name") == {"team"}
    assert _tool_count(samples, "lookup", "researcher") == 1
    assert _count(samples, FIRST_CHUNK, gen_ai_agent_name="researcher") == 1
