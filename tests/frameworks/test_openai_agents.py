"""The OpenAI Agents SDK integration with the real package and its own ScriptedModel:
one record per agent of a run (handoffs included), tools with their agent, a handoff run
as a workflow, streamed runs timed to their end, and the SDK behaving as without it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("agents", reason="openai-agents is not installed (see scripts/test)")

from agents import Agent, RunConfig, Runner, function_tool, set_trace_processors
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import agentstat.testing
from agentstat import semconv
from agentstat.integrations.openai_agents import ERROR_TYPE_UNKNOWN, OpenAIAgentsInstrumentor
from tests.frameworks import _shared
from tests.frameworks._shared import TOOLS, tool_key

calls = agentstat.testing.calls


@pytest.fixture(autouse=True)
def _no_trace_export() -> Iterator[None]:
    """The SDK's default processor exports traces to its vendor's service: drop it."""
    set_trace_processors([])
    yield
    set_trace_processors([])


lookup = function_tool(_shared.lookup)
broken = function_tool(_shared.broken)


def _call(name: str, n: int = 0) -> Any:
    return function_call(name, {"q": "x"} if name != "transfer_to_writer" else {}, call_id=f"c{n}")


def _planner(*steps: Any, name: str = "planner", model: ScriptedModel | None = None) -> Agent:
    steps = steps or ([assistant_message("done")],)
    return Agent(name=name, model=model or ScriptedModel(list(steps)), tools=[lookup, broken])


def _triage() -> Agent:
    writer = Agent(name="writer", model=ScriptedModel([[assistant_message("written")]]))
    return Agent(
        name="triage",
        model=ScriptedModel([[_call("transfer_to_writer", 9)]]),
        handoffs=[writer],
    )


def test_every_runner_entry_point_records_one_run_per_agent_name(instrument: Any) -> None:
    """run_sync, run and run_streamed each record one run under the agent's name."""
    instrument(OpenAIAgentsInstrumentor)
    planner = _planner([assistant_message("a")], [assistant_message("b")])
    critic = _planner(name="critic")

    Runner.run_sync(planner, "hello")
    Runner.run_sync(critic, "hello")

    async def run_async() -> None:
        planner.model.extend([[assistant_message("c")], [assistant_message("d")]])
        await Runner.run(planner, "hello")
        await Runner.run(planner, "hello")
        streamed = Runner.run_streamed(planner, "hello")
        async for _ in streamed.stream_events():
            pass

    planner.model.extend([[assistant_message("e")]])
    Runner.run_sync(planner, "hello")
    asyncio.run(run_async())

    assert calls("agent", "planner") == 5
    assert calls("agent", "critic") == 1
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {}


def test_handoff_records_each_agent_and_one_workflow_named_by_the_run(instrument: Any) -> None:
    """A run that hands off from triage to writer records one run of each and one
    gen_ai.workflow.duration named by RunConfig(workflow_name=...)."""
    instrument(OpenAIAgentsInstrumentor)
    result = Runner.run_sync(_triage(), "hello", run_config=RunConfig(workflow_name="support"))
    assert result.final_output == "written"
    Runner.run_sync(_triage(), "hello")

    assert calls("agent", "triage") == 2
    assert calls("agent", "writer") == 2
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {
        ("invoke_workflow", "support", ""): 1,
        ("invoke_workflow", "Agent workflow", ""): 1,
    }


def test_agent_used_as_a_tool_is_recorded_under_its_own_name(instrument: Any) -> None:
    """An agent called as another agent's tool (agent.as_tool) records its own run, and
    its tools carry its name; the tool call itself is the outer agent's."""
    instrument(OpenAIAgentsInstrumentor)
    researcher = _planner([_call("lookup", 1)], [assistant_message("found")], name="researcher")
    boss = Agent(
        name="boss",
        model=ScriptedModel(
            [[function_call("research", {"input": "x"}, call_id="b1")], [assistant_message("ok")]]
        ),
        tools=[researcher.as_tool(tool_name="research", tool_description="Research.")],
    )
    assert Runner.run_sync(boss, "hello").final_output == "ok"
    assert calls("agent", "boss") == 1
    assert calls("agent", "researcher") == 1
    assert agentstat.testing.series(TOOLS) == {
        tool_key("research", "boss"): 1,
        tool_key("lookup", "researcher"): 1,
    }


def test_tools_record_per_tool_name_with_their_agent_and_a_fixed_error_type(
    instrument: Any,
) -> None:
    """Each function-tool call is one record with the calling agent and type "function";
    a failing tool the SDK reports to the model records error.type "_OTHER", even when the
    application runs the agent while handling an exception of its own."""
    instrument(OpenAIAgentsInstrumentor)
    planner = _planner(
        [_call("lookup", 1), _call("lookup", 2)],
        [assistant_message("done")],
        [_call("broken", 3)],
        [assistant_message("done")],
    )
    Runner.run_sync(planner, "hello")
    try:
        raise KeyError("the application's own")
    except KeyError:
        result = Runner.run_sync(planner, "hello")
    assert result.final_output == "done"

    assert agentstat.testing.series(TOOLS) == {
        tool_key("lookup", "planner"): 2,
        tool_key("broken", "planner", ERROR_TYPE_UNKNOWN): 1,
    }
    assert calls("agent", "planner") == 2


def test_failed_run_records_the_exception_class(instrument: Any) -> None:
    """A run whose model raises records error.type=TimeoutError for the agent, and the
    caller gets the same exception object."""
    instrument(OpenAIAgentsInstrumentor)
    planned = TimeoutError("model timed out")
    planner = _planner(ModelStep.raise_error(planned))
    with pytest.raises(TimeoutError) as info:
        Runner.run_sync(planner, "hello")
    assert info.value is planned
    assert calls("agent", "planner", "TimeoutError") == 1
    assert calls("agent", "planner") == 0


class SlowModel(ScriptedModel):
    """A ScriptedModel whose streams wait 50 ms before the first event and 100 ms after
    the last one."""

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0.05)
        async for event in super().stream_response(*args, **kwargs):
            yield event
        await asyncio.sleep(0.1)


def test_streamed_run_is_timed_to_its_end_with_time_to_first_chunk(instrument: Any) -> None:
    """A run_streamed over a model that waits 50 ms, streams, then waits 100 ms records one
    run of at least 150 ms, with the first model event after at least 50 ms."""
    instrument(OpenAIAgentsInstrumentor)
    planner = _planner(model=SlowModel([[assistant_message("streamed")]]))

    async def consume() -> str:
        streamed = Runner.run_streamed(planner, "hello")
        async for _ in streamed.stream_events():
            pass
        return streamed.final_output

    assert asyncio.run(consume()) == "streamed"
    attributes = {semconv.GEN_AI_AGENT_NAME: "planner"}
    duration = agentstat.testing.sample(semconv.AGENT_DURATION, attributes, field="sum")
    first = agentstat.testing.sample(semconv.AGENT_TIME_TO_FIRST_CHUNK, attributes, field="sum")
    assert calls("agent", "planner") == 1
    assert duration is not None and duration >= 0.15
    assert first is not None and 0.05 <= first < duration


def _observe() -> dict[str, Any]:
    """What an application sees of the SDK: outputs, items, stream events, exceptions."""
    seen: dict[str, Any] = {}
    planner = _planner([_call("lookup", 1)], [assistant_message("done")])
    result = Runner.run_sync(planner, "hello")
    seen["output"] = result.final_output
    seen["items"] = [type(item).__name__ for item in result.new_items]
    seen["handoff"] = Runner.run_sync(_triage(), "hello").last_agent.name
    with pytest.raises(TimeoutError) as info:
        Runner.run_sync(_planner(ModelStep.raise_error(TimeoutError("t"))), "hello")
    seen["error"] = (type(info.value), info.value.args)

    async def streamed() -> None:
        planner.model.extend([[_call("lookup", 1)], [assistant_message("done")]])
        run = Runner.run_streamed(planner, "hello")
        seen["events"] = [event.type async for event in run.stream_events()]
        seen["streamed"] = run.final_output

    asyncio.run(streamed())
    return seen


def test_abandoned_stream_ends_the_same_with_the_integration_on(instrument: Any) -> None:
    """A consumer that stops reading stream_events() after the first event leaves the
    SDK's run in the same state with the integration on as without."""

    def abandon() -> tuple[bool, bool]:
        planner = _planner([_call("lookup", 1)], [assistant_message("done")])

        async def run() -> tuple[bool, bool]:
            streamed = Runner.run_streamed(planner, "hello")
            events = streamed.stream_events()
            async for _ in events:
                break
            await events.aclose()
            await asyncio.sleep(0.05)
            return streamed.is_complete, streamed.run_loop_task.done()

        return asyncio.run(run())

    without = abandon()
    instrument(OpenAIAgentsInstrumentor)
    assert abandon() == without


def test_the_sdk_behaves_the_same_with_the_integration_on(instrument: Any) -> None:
    """Outputs, run items, handoffs, stream events and exceptions are the same with the
    integration on as without."""
    without = _observe()
    instrument(OpenAIAgentsInstrumentor)
    with_it = _observe()
    assert with_it == without
    assert calls("agent", "planner") == 2


def test_replacing_the_trace_processors_keeps_recording(instrument: Any) -> None:
    """set_trace_processors([...]) by the application while the integration is on does not
    drop agentstat's processor."""
    instrument(OpenAIAgentsInstrumentor)
    set_trace_processors([])
    Runner.run_sync(_planner(), "hello")
    assert calls("agent", "planner") == 1


def test_uninstrument_stops_recording(instrument: Any) -> None:
    """After uninstrument() runs record nothing, and instrumenting again records each run
    once (the processor is not registered twice)."""
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument()
    instrumentor.uninstrument()
    Runner.run_sync(_planner(), "hello")
    assert calls("agent", "planner") == 0
    instrument(OpenAIAgentsInstrumentor)
    Runner.run_sync(_planner(), "hello")
    assert calls("agent", "planner") == 1
