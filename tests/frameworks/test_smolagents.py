"""smolagents integration: agent runs (plain and streamed) and tool calls, driven by a
local model returning tool calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip(
    "smolagents", reason="smolagents is installed only in the .venv-frameworks-b test venv"
)

from opentelemetry.instrumentation.utils import suppress_instrumentation
from smolagents.utils import AgentGenerationError

from agentstat import semconv
from agentstat.integrations.smolagents import SmolagentsInstrumentor
from agentstat.testing import sample
from tests.apps.smolagents_app import fakes
from tests.frameworks._b import agent, instrumented, run_app, series, tool, tool_series


@pytest.fixture
def smolagents_on() -> Iterator[None]:
    with instrumented(SmolagentsInstrumentor()):
        yield


def test_run_records_agent_and_tools_once_each(smolagents_on: None) -> None:
    """One run is one agent record named from the agent, and one record per tool call
    (final_answer included) carrying the agent's name."""
    calculator = fakes.agent("calculator")
    assert calculator.run("add 1 and 2") == "3"
    assert agent("calculator") == 1
    assert tool("add", agent="calculator") == 1
    assert tool("final_answer", agent="calculator") == 1


def test_streamed_run_is_timed_to_its_end(smolagents_on: None) -> None:
    """run(stream=True) returns at once; the record covers the consumed stream, model
    delays included, and time to first chunk is recorded."""
    steps = fakes.agent("calculator", delay=0.1).run("add 1 and 2", stream=True)
    assert agent("calculator") == 0
    assert list(steps)
    assert agent("calculator") == 1
    assert agent("calculator", field="sum") >= 0.2 + fakes.TOOL_SLEEP
    first = sample(semconv.AGENT_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_AGENT_NAME: "calculator"})
    assert first == 1


def test_abandoned_stream_counts_as_cancelled(smolagents_on: None) -> None:
    """A stream closed before its end is one record with error.type cancelled."""
    steps = fakes.agent("calculator").run("add 1 and 2", stream=True)
    next(steps)
    # smolagents' own generator answers close() with "generator ignored GeneratorExit",
    # with or without agentstat.
    with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
        steps.close()
    assert agent("calculator", error="cancelled") == 1
    assert agent("calculator") == 0


def test_a_held_stream_does_not_hide_later_runs_of_the_agent(smolagents_on: None) -> None:
    """A stream whose consumer keeps it between steps is open only while the agent
    runs: runs of the same agent in between are each recorded, with their tools, and
    the held stream is one run of its own at its end."""
    calculator = fakes.agent("calculator")
    steps = calculator.run("add 1 and 2", stream=True)
    next(steps)
    for _ in range(3):
        assert calculator.run("add 1 and 2") == "3"
    assert agent("calculator") == 3
    assert tool("add", agent="calculator") == 3
    assert list(steps)  # (the runs in between reset the agent's memory: smolagents')
    assert agent("calculator") == 4
    assert tool("add", agent="calculator") == 4


def test_unnamed_agent_is_named_by_its_class(smolagents_on: None) -> None:
    """An agent without a name is recorded under its class name."""
    fakes.agent(None).run("add 1 and 2")
    assert agent("ToolCallingAgent") == 1
    assert tool("add", agent="ToolCallingAgent") == 1


def test_code_agent_tools_carry_the_agent_from_their_thread(smolagents_on: None) -> None:
    """A code agent's code runs in a thread of its own (smolagents' timeout); the tools
    it calls are still recorded with the agent's name, and the answer is unchanged."""
    assert fakes.code_agent("coder").run("add 1 and 2") == 3
    assert agent("coder") == 1
    assert tool("add", agent="coder") == 1
    assert tool("final_answer", agent="coder") == 1


def test_managed_agent_is_recorded_under_its_own_name(smolagents_on: None) -> None:
    """A managed agent's run is its own record inside its manager's, and its tool names
    it as the agent."""
    fakes.manager().run("add 1 and 2")
    assert agent("manager") == 1
    assert agent("calculator") == 1
    assert tool("add", agent="calculator") == 1
    assert tool("final_answer", agent="manager") == 1


def test_tool_exception_is_recorded_by_class_and_run_goes_on(smolagents_on: None) -> None:
    """A failing tool records its exception's class; smolagents reports it to the model
    as before and the run ends normally."""
    result = fakes.agent("calculator", tool_name="broken").run("add 1 and 2")
    assert result == "3"
    assert tool("broken", agent="calculator", error="ValueError") == 1
    assert agent("calculator") == 1


def test_model_error_fails_the_run_with_its_class(smolagents_on: None) -> None:
    """A model that raises fails the run: smolagents' exception is re-raised unchanged
    and recorded by its class."""
    with pytest.raises(AgentGenerationError):
        fakes.agent("calculator", fail=True).run("add 1 and 2")
    assert agent("calculator", error="AgentGenerationError") == 1


def test_behaviour_is_the_same_with_and_without_agentstat() -> None:
    """Results, streamed step types, and a direct tool call do not change."""

    def outcome() -> tuple[object, ...]:
        calculator = fakes.agent("calculator")
        steps = [type(step).__name__ for step in calculator.run("add 1 and 2", stream=True)]
        coded = fakes.code_agent().run("add 1 and 2")
        return calculator.run("add 1 and 2"), tuple(steps), fakes.add(a=2, b=2), coded

    bare = outcome()
    with instrumented(SmolagentsInstrumentor()):
        assert outcome() == bare
    assert bare[0] == "3" and bare[2] == 4 and bare[3] == 3


def test_uninstrument_stops_recording_and_suppression_skips() -> None:
    """After uninstrument() nothing is recorded; under suppress_instrumentation() neither."""
    with instrumented(SmolagentsInstrumentor()):
        with suppress_instrumentation():
            fakes.agent("calculator").run("add 1 and 2")
        assert agent("calculator") == 0
    fakes.agent("calculator").run("add 1 and 2")
    assert agent("calculator") == 0 and tool("add", agent="calculator") == 0


def test_opentelemetry_instrument_records_runs_with_zero_configuration(tmp_path) -> None:
    """Under the real opentelemetry-instrument, three runs and one streamed run give four
    agent and four tool records on /metrics."""
    found = run_app("smolagents_app", tmp_path)
    assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: "calculator"}) == 4
    assert tool_series(found, "add", "calculator") == 4
