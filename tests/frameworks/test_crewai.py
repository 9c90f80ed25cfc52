"""CrewAI integration: per-crew, per-agent and per-tool durations from CrewAI's event bus,
driven by a local model speaking CrewAI's ReAct format."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

pytest.importorskip("crewai", reason="crewai is installed only in the .venv-frameworks-b test venv")

from collections.abc import Iterator

from crewai.events import crewai_event_bus
from crewai.events.types.agent_events import (
    AgentExecutionCompletedEvent,
    AgentExecutionStartedEvent,
)
from crewai.events.types.tool_usage_events import ToolUsageErrorEvent
from opentelemetry.instrumentation.utils import suppress_instrumentation

from agentstat import semconv
from agentstat.integrations.crewai import ERROR_TYPE, CrewAIInstrumentor
from tests.apps.crewai_app import fakes
from tests.frameworks._b import agent, instrumented, run_app, series, tool, tool_series, workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def crewai_on() -> Iterator[None]:
    with instrumented(CrewAIInstrumentor()):
        yield


def kickoff(crew: object) -> object:
    result = crew.kickoff()  # type: ignore[attr-defined]
    crewai_event_bus.flush()
    return result


def test_one_kickoff_records_crew_agent_and_tool_once(crewai_on: None) -> None:
    """A kickoff gives one workflow, one agent and one tool record, named from the crew,
    the agent's role and the tool, the tool carrying its agent."""
    kickoff(fakes.crew(name="newsroom"))
    assert workflow("newsroom") == 1
    assert agent("Researcher") == 1
    assert tool("add", agent="Researcher") == 1


def test_each_role_gets_its_own_series(crewai_on: None) -> None:
    """Two agents of one crew are recorded under their own roles, each with its tool."""
    for _ in range(2):
        kickoff(fakes.crew(roles=("Researcher", "Writer")))
    assert agent("Researcher") == 2 and agent("Writer") == 2
    assert tool("add", agent="Researcher") == 2 and tool("add", agent="Writer") == 2
    assert workflow("newsroom") == 2


def test_concurrent_kickoffs_are_paired_by_their_own_events(crewai_on: None) -> None:
    """Two crews kicked off together (kickoff_async) each give their own records, each
    spanning its own model calls and tool."""

    async def both() -> list[object]:
        crews = [fakes.crew(delay=0.05), fakes.crew(delay=0.05)]
        return await asyncio.gather(*(crew.kickoff_async() for crew in crews))

    assert [str(result) for result in asyncio.run(both())] == ["3", "3"]
    crewai_event_bus.flush()
    assert workflow("newsroom") == 2 and agent("Researcher") == 2
    assert tool("add", agent="Researcher") == 2
    assert agent("Researcher", field="sum") >= 2 * (0.1 + fakes.TOOL_SLEEP)


def test_durations_span_the_run_from_event_timestamps(crewai_on: None) -> None:
    """With a model that sleeps 0.1 s per call, the agent's two calls and the tool's
    sleep show in the durations, and the crew lasts at least as long as its agent."""
    kickoff(fakes.crew(delay=0.1))
    agent_seconds = agent("Researcher", field="sum")
    tool_seconds = tool("add", agent="Researcher", field="sum")
    assert agent_seconds >= 0.2 + fakes.TOOL_SLEEP
    assert fakes.TOOL_SLEEP <= tool_seconds < agent_seconds
    assert workflow("newsroom", field="sum") >= agent_seconds


def test_failing_agent_records_fixed_error_type_and_raises_unchanged(crewai_on: None) -> None:
    """A model error fails the agent and the crew with error.type _OTHER (CrewAI reports
    only the message, which never becomes a label); kickoff raises the model's own
    exception."""
    with pytest.raises(RuntimeError, match="the model is down"):
        fakes.crew(fail=True).kickoff()
    crewai_event_bus.flush()
    assert ERROR_TYPE == semconv.OTHER
    assert agent("Researcher", error=ERROR_TYPE) == 1
    assert workflow("newsroom", error=ERROR_TYPE) == 1
    assert agent("Researcher") == 0


def test_tool_exception_is_recorded_by_its_class(crewai_on: None) -> None:
    """Every failed tool use CrewAI reports is one record with the exception's class."""
    failures: list[object] = []

    def count(source: object, event: object) -> None:
        failures.append(event)

    crewai_event_bus.on(ToolUsageErrorEvent)(count)
    try:
        kickoff(fakes.crew(tools=[fakes.broken]))
    finally:
        crewai_event_bus.off(ToolUsageErrorEvent, count)
    assert failures
    assert tool("broken", agent="Researcher", error="ValueError") == len(failures)
    assert tool("broken", agent="Researcher") == 0


def test_standalone_agent_kickoff_is_recorded_by_role(crewai_on: None) -> None:
    """``Agent.kickoff()`` outside a crew records the agent (and its tool) once."""
    researcher = fakes.crew().agents[0]
    researcher.kickoff("add 1 and 2")
    crewai_event_bus.flush()
    assert agent("Researcher") == 1
    assert tool("add", agent="Researcher") == 1
    assert workflow("newsroom") == 0


def test_events_replayed_from_a_checkpoint_are_not_recorded_again(crewai_on: None) -> None:
    """CrewAI's replay of a past run's events (checkpoint resume) adds no records."""
    seen: list[object] = []

    def keep(source: object, event: object) -> None:
        seen.append(event)

    kinds = (AgentExecutionStartedEvent, AgentExecutionCompletedEvent)
    for kind in kinds:
        crewai_event_bus.on(kind)(keep)
    try:
        kickoff(fakes.crew())
    finally:
        for kind in kinds:
            crewai_event_bus.off(kind, keep)
    assert agent("Researcher") == 1 and len(seen) == 2
    for event in seen:
        crewai_event_bus.replay(None, event)
    crewai_event_bus.flush()
    assert agent("Researcher") == 1


def test_results_and_errors_are_the_same_with_and_without_agentstat() -> None:
    """The crew's output, and the exception of a failing crew, do not change."""

    def outcome() -> tuple[str, str]:
        result = str(kickoff(fakes.crew()))
        try:
            fakes.crew(fail=True).kickoff()
        except Exception as exc:
            return result, f"{type(exc).__name__}: {exc}"
        return result, ""

    bare = outcome()
    with instrumented(CrewAIInstrumentor()):
        assert outcome() == bare
    assert bare == ("3", "RuntimeError: the model is down")


def test_uninstrument_stops_recording_and_suppression_skips() -> None:
    """After uninstrument() nothing is recorded; under suppress_instrumentation() neither."""
    with instrumented(CrewAIInstrumentor()):
        with suppress_instrumentation():
            kickoff(fakes.crew())
        assert agent("Researcher") == 0
    kickoff(fakes.crew())
    assert agent("Researcher") == 0 and workflow("newsroom") == 0


def test_opentelemetry_instrument_records_crews_with_zero_configuration(tmp_path) -> None:
    """Under the real opentelemetry-instrument, three kickoffs of a two-agent crew give
    exact series on /metrics with no configuration — and no double count from
    OpenLLMetry's CrewAI instrumentor, loaded beside it, whose GenAI agent spans the
    span bridge leaves to this integration."""
    found = run_app("crewai_app", tmp_path)
    assert series(found, semconv.WORKFLOW_DURATION, {semconv.GEN_AI_WORKFLOW_NAME: "newsroom"}) == 3
    for role in ("Researcher", "Writer"):
        assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: role}) == 3
        assert tool_series(found, "add", role) == 3


def test_disabled_by_its_entry_point_name(tmp_path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_crewai keeps CrewAI unrecorded
    (OpenLLMetry's ``crewai`` instrumentor is switched off too: its spans would feed the
    span bridge, see test_genai_spans)."""
    disabled = "agentstat_crewai,crewai"
    found = run_app("crewai_app", tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: "Researcher"}) == 0
    assert series(found, semconv.WORKFLOW_DURATION, {semconv.GEN_AI_WORKFLOW_NAME: "newsroom"}) == 0
