"""LlamaIndex integration: agent runs timed to their handler's completion, function
tools, and AgentWorkflow runs with each agent's turn, on MockFunctionCallingLLM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

pytest.importorskip(
    "llama_index.core",
    reason="llama-index-core is installed only in the .venv-frameworks-b test venv",
)

from opentelemetry.instrumentation.utils import suppress_instrumentation

from agentstat import semconv
from agentstat.integrations.llama_index import LlamaIndexInstrumentor
from tests.apps.llama_index_app import fakes
from tests.frameworks._b import (
    agent,
    instrumented,
    run_app,
    series,
    tool,
    tool_series,
    workflow,
)


@pytest.fixture
def llama_on() -> Iterator[None]:
    with instrumented(LlamaIndexInstrumentor()):
        yield


def test_agent_run_records_agent_and_tool_once(llama_on: None) -> None:
    """Awaiting agent.run() gives one agent record named from the agent and one tool
    record carrying that agent."""
    assert str(asyncio.run(_run(fakes.calculator()))) == "3"
    assert agent("calculator") == 1
    assert tool("add", agent="calculator") == 1


async def _run(runnable: object, message: str = "add 1 and 2") -> object:
    return await runnable.run(message)  # type: ignore[attr-defined]


def test_react_agent_is_recorded_like_any_workflow_agent(llama_on: None) -> None:
    """A ReActAgent (text protocol) goes through the same run and tool hooks."""
    assert str(asyncio.run(_run(fakes.reasoner()))) == "3"
    assert agent("reasoner") == 1
    assert tool("add", agent="reasoner") == 1


def test_handler_is_timed_to_completion(llama_on: None) -> None:
    """run() returns a handler at once; the record covers the run until its result,
    model delays and the tool's sleep included, even when the handler is read late."""

    async def main() -> None:
        handler = fakes.calculator(delay=0.1).run("add 1 and 2")
        assert agent("calculator") == 0
        await asyncio.sleep(0.5)  # the run finishes while nobody awaits it
        assert agent("calculator") == 1
        await handler

    asyncio.run(main())
    assert agent("calculator", field="sum") >= 0.2 + fakes.TOOL_SLEEP
    assert tool("add", agent="calculator", field="sum") >= fakes.TOOL_SLEEP


def test_concurrent_runs_of_one_agent_are_each_recorded(llama_on: None) -> None:
    """Handlers of one agent started together and awaited together give one record
    each, and the caller is not left inside any of them."""
    from agentstat.integrations import current_agent_name

    async def main() -> None:
        calculator = fakes.calculator(delay=0.05)
        handlers = [calculator.run("add 1 and 2") for _ in range(3)]
        assert current_agent_name() is None
        await asyncio.gather(*handlers)

    asyncio.run(main())
    assert agent("calculator") == 3
    assert tool("add", agent="calculator") == 3


def test_streamed_events_do_not_change_the_record(llama_on: None) -> None:
    """Consuming stream_events() before awaiting gives the same single record."""

    async def main() -> list[str]:
        handler = fakes.calculator().run("add 1 and 2")
        kinds = [type(event).__name__ async for event in handler.stream_events()]
        await handler
        return kinds

    assert "ToolCallResult" in asyncio.run(main())
    assert agent("calculator") == 1 and tool("add", agent="calculator") == 1


def test_failing_run_counts_as_failure_with_its_class(llama_on: None) -> None:
    """A model error fails the handler; the record has the exception's class and the
    caller gets the exception unchanged."""
    with pytest.raises(RuntimeError, match="the model is down"):
        asyncio.run(_run(fakes.calculator(fail=True)))
    assert agent("calculator", error="RuntimeError") == 1
    assert agent("calculator") == 0


def test_cancelled_handler_counts_as_cancelled(llama_on: None) -> None:
    """A run cancelled through its handler is recorded as cancelled."""

    async def main() -> None:
        handler = fakes.calculator(delay=0.2).run("add 1 and 2")
        await asyncio.sleep(0.05)
        await handler.cancel_run()

    asyncio.run(main())
    assert agent("calculator", error="cancelled") == 1


def test_tool_exception_is_recorded_by_class(llama_on: None) -> None:
    """A failing function tool records its exception's class; the agent turns it into a
    message for the model as before and answers."""
    assert str(asyncio.run(_run(fakes.calculator(tool=fakes.BROKEN)))) == "3"
    assert tool("broken", agent="calculator", error="ValueError") == 1
    assert agent("calculator") == 1


def test_direct_tool_calls_are_recorded_without_an_agent(llama_on: None) -> None:
    """A tool called outside any agent is recorded with no gen_ai.agent.name."""
    asyncio.run(fakes.ADD.acall(a=1, b=2))
    with pytest.raises(ValueError):
        fakes.BROKEN.call(a=1, b=2)
    assert tool("add") == 1
    assert tool("broken", error="ValueError") == 1


def test_agent_workflow_records_workflow_and_each_agents_turn(llama_on: None) -> None:
    """An AgentWorkflow run with a handoff gives one workflow record under its name and
    one record per agent turn; the calculator's tool carries the calculator."""
    for _ in range(2):
        assert str(asyncio.run(_run(fakes.workflow(delay=0.05)))) == "3"
    assert workflow("support") == 2
    assert agent("triage") == 2 and agent("calculator") == 2
    assert tool("add", agent="calculator") == 2
    assert workflow("support", field="sum") >= agent("triage", field="sum") + agent(
        "calculator", field="sum"
    )


def test_unnamed_workflow_is_named_by_its_class(llama_on: None) -> None:
    """An AgentWorkflow without workflow_name is recorded as AgentWorkflow."""
    asyncio.run(_run(fakes.workflow(name=None)))
    assert workflow("AgentWorkflow") == 1


def test_behaviour_is_the_same_with_and_without_agentstat() -> None:
    """Results, streamed event types and a tool's output do not change."""

    async def outcome() -> tuple[object, ...]:
        handler = fakes.workflow().run("add 1 and 2")
        kinds = [type(event).__name__ async for event in handler.stream_events()]
        result = str(await handler)
        output = await fakes.ADD.acall(a=2, b=2)
        return result, tuple(kinds), output.content

    bare = asyncio.run(outcome())
    with instrumented(LlamaIndexInstrumentor()):
        assert asyncio.run(outcome()) == bare
    assert bare[0] == "3" and bare[2] == "4"


def test_uninstrument_stops_recording_and_suppression_skips() -> None:
    """After uninstrument() nothing is recorded; under suppress_instrumentation() neither."""
    with instrumented(LlamaIndexInstrumentor()):
        with suppress_instrumentation():
            asyncio.run(_run(fakes.calculator()))
        assert agent("calculator") == 0
    asyncio.run(_run(fakes.workflow()))
    assert agent("calculator") == 0 and workflow("support") == 0
    from workflows.context.context import Context

    assert not hasattr(Context.write_event_to_stream, "__agentstat_original__")


def test_opentelemetry_instrument_records_agents_and_workflows(tmp_path) -> None:
    """Under the real opentelemetry-instrument: three agent runs and two workflow runs
    give exact series on /metrics with no configuration."""
    found = run_app("llama_index_app", tmp_path)
    assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: "calculator"}) == 5
    assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: "triage"}) == 2
    assert series(found, semconv.WORKFLOW_DURATION, {semconv.GEN_AI_WORKFLOW_NAME: "support"}) == 2
    assert tool_series(found, "add", "calculator") == 5
