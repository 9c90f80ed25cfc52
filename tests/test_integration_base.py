"""The framework integration base, end to end: a small framework (tests/apps/framework)
and an integration written against ``agentstat.integrations``, loaded by the real
``opentelemetry-instrument`` through its own entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

from agentstat import semconv
from tests.helpers import Samples, clean_env, free_port, run_instrumented_app

APPS = Path(__file__).parent / "apps"
AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION
WORKFLOW = semconv.WORKFLOW_DURATION
TTFC = semconv.AGENT_TIME_TO_FIRST_CHUNK


def _run(tmp_path: Path, **settings: str) -> tuple[Samples, str]:
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "framework", app_dir)
    port = free_port()
    env = clean_env(OTEL_EXPORTER_PROMETHEUS_PORT=str(port), PYTHONPATH=str(app_dir), **settings)
    samples, _ = run_instrumented_app(app_dir, env, port)
    return samples, (app_dir / "app.log").read_text()


def _key(spec: semconv.MetricSpec, name: str, error: str = "", **attributes: str):
    operation = {AGENT: "invoke_agent", TOOL: "execute_tool", WORKFLOW: "invoke_workflow"}
    name_attribute = {
        AGENT: semconv.GEN_AI_AGENT_NAME,
        TOOL: semconv.GEN_AI_TOOL_NAME,
        WORKFLOW: semconv.GEN_AI_WORKFLOW_NAME,
    }
    labels = {
        semconv.GEN_AI_OPERATION_NAME: operation[spec],
        name_attribute[spec]: name,
        **attributes,
    }
    if error:
        labels[semconv.ERROR_TYPE] = error
    return (spec.count, frozenset((semconv.prometheus_label(k), v) for k, v in labels.items()))


def _names(samples: Samples, spec: semconv.MetricSpec) -> set[str]:
    return {key[0] for key in samples if key[0] == spec.count}


def test_integration_records_each_logical_run_once(tmp_path: Path) -> None:
    """run() delegating to stream() is one agent run; tools carry their agent and type;
    the crew is one workflow run; a failing run is recorded with its class."""
    samples, _ = _run(tmp_path)
    assert samples[_key(AGENT, "planner")] == 3
    assert samples[_key(AGENT, "planner", "ValueError")] == 1
    assert samples[_key(AGENT, "writer")] == 3
    assert samples[_key(WORKFLOW, "newsroom")] == 1
    function = {semconv.GEN_AI_TOOL_TYPE: "function"}
    search = {semconv.GEN_AI_AGENT_NAME: "planner", **function}
    assert samples[_key(TOOL, "search", **search)] == 3
    summarize = {semconv.GEN_AI_AGENT_NAME: "writer", **function}
    assert samples[_key(TOOL, "summarize", **summarize)] == 3
    # only the standalone stream reached a first chunk on its own
    ttfc = (TTFC.count, _key(AGENT, "writer")[1])
    assert samples[ttfc] == 1


def test_disabled_instrumentations_switches_one_framework_off(tmp_path: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_fakefw leaves that framework alone
    while agentstat's dotted paths still record."""
    samples, _ = _run(
        tmp_path,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="agentstat_fakefw",
        AGENTSTAT_AGENTS="fakefw:Crew.kickoff=crew-by-path",
    )
    assert samples[_key(AGENT, "crew-by-path")] == 1
    assert _key(AGENT, "planner") not in samples
    assert not _names(samples, WORKFLOW)
    assert not _names(samples, TOOL)


def test_unsupported_version_logs_one_line_and_stays_off(tmp_path: Path) -> None:
    """Outside the declared range the integration logs one line and records nothing."""
    samples, log = _run(tmp_path, FAKEFW_SUPPORTED=">= 2.0")
    assert _key(AGENT, "planner") not in samples
    lines = [line for line in log.splitlines() if "FakeFrameworkInstrumentor" in line]
    assert len(lines) == 1, log
    assert "fakefw >= 2.0" in lines[0] and "1.4.0 is installed" in lines[0]


def test_explicit_entry_on_an_integrated_method_records_once_under_its_name(
    tmp_path: Path,
) -> None:
    """AGENTSTAT_AGENTS naming a method the integration times: one record per run, under
    the user's name."""
    samples, _ = _run(tmp_path, AGENTSTAT_AGENTS="fakefw:Agent.run=explicit")
    # planner: a, b, fail (ValueError), crew; writer: c, crew -- all through run()
    assert samples[_key(AGENT, "explicit")] == 5
    assert samples[_key(AGENT, "explicit", "ValueError")] == 1
    assert _key(AGENT, "planner") not in samples
    assert samples[_key(AGENT, "writer")] == 1  # writer.stream("e") alone: the integration


def test_captured_function_entry_warns_that_the_integration_covers_it(tmp_path: Path) -> None:
    """A tool entry naming a function the framework captured at definition time warns,
    naming the holder and the integration; one made into a framework object is refused
    with a hint."""
    _, log = _run(tmp_path, AGENTSTAT_TOOLS="app_agents:summarize,app_agents:search")
    warning = next(line for line in log.splitlines() if "'app_agents:summarize'" in line)
    assert "captured before agentstat wrapped it" in warning
    assert "fakefw.Tool object" in warning
    assert "agentstat_fakefw integration" in warning
    refused = next(line for line in log.splitlines() if "'app_agents:search'" in line)
    assert "is a Tool, not a function or method (a fakefw object" in refused
