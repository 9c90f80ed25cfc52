"""The pydantic-ai integration with the real package and its own FunctionModel: one
record per run of every shape, names after pydantic-ai's own inference, tools with
their agent, streams timed to their end, and pydantic-ai behaving as without it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("pydantic_ai", reason="pydantic-ai is not installed (see scripts/test)")

from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import agentstat.testing
from agentstat import semconv
from agentstat.integrations.pydantic_ai import PydanticAIInstrumentor
from tests.frameworks import _shared
from tests.frameworks._shared import TOOLS, tool_key

calls = agentstat.testing.calls


def _reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Call the tool named in the prompt ("call lookup"), then answer; "fail" raises."""
    last = messages[-1].parts[-1]
    if last.part_kind == "user-prompt":
        words = str(last.content).split()
        if words[0] == "fail":
            raise RuntimeError("model down")
        if words[0] == "call":
            return ModelResponse(parts=[ToolCallPart(word, {"q": "x"}) for word in words[1:]])
        return ModelResponse(parts=[TextPart(f"answer to {last.content}")])
    return ModelResponse(parts=[TextPart("done")])


async def _slow_stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    await asyncio.sleep(0.05)
    yield "hel"
    await asyncio.sleep(0.1)
    yield "lo"


def _agent(name: str | None = "planner", **kwargs: Any) -> Agent:
    agent = Agent(FunctionModel(_reply, stream_function=_slow_stream), name=name, **kwargs)

    agent.tool_plain(_shared.lookup)
    agent.tool_plain(_shared.broken)

    @agent.tool_plain
    def flaky(q: str) -> str:
        raise ModelRetry("try again")

    return agent


def _tools() -> dict[tuple[str, ...], float]:
    return agentstat.testing.series(TOOLS)


def test_every_run_shape_records_one_run_per_agent_name(instrument: Any) -> None:
    """run_sync, run, run_stream, run_stream_events, run_stream_sync and iter each record
    exactly one run under the agent's own name, nothing under any other name."""
    instrument(PydanticAIInstrumentor)
    planner, critic = _agent("planner"), _agent("critic")

    for _ in range(3):
        planner.run_sync("hello")
    critic.run_sync("hello")

    async def shapes() -> None:
        await planner.run("hello")
        async with planner.run_stream("hello") as stream:
            await stream.get_output()
        async with planner.run_stream_events("hello") as events:
            async for _ in events:
                pass
        async with planner.iter("hello") as run:
            async for _ in run:
                pass

    asyncio.run(shapes())
    planner.run_stream_sync("hello").get_output()

    assert calls("agent", "planner") == 8
    assert calls("agent", "critic") == 1
    assert set(agentstat.testing.series(semconv.AGENT_DURATION)) == {
        ("invoke_agent", "planner", ""),
        ("invoke_agent", "critic", ""),
    }


def test_unnamed_agent_keeps_the_name_pydantic_ai_infers_and_records_under_it(
    instrument: Any,
) -> None:
    """An unnamed `helper = Agent(model)` still infers "helper" from the caller's frame on
    its first run (sync, async, streamed, event stream), and is recorded as "helper"."""
    instrument(PydanticAIInstrumentor)
    helper = _agent(None)
    assert helper.name is None
    helper.run_sync("hello")
    assert helper.name == "helper"

    async def first_runs() -> tuple[str | None, ...]:
        assistant = _agent(None)
        await assistant.run("hello")
        streamer = _agent(None)
        async with streamer.run_stream("hello") as stream:
            await stream.get_output()
        watcher = _agent(None)
        async with watcher.run_stream_events("hello") as events:
            async for _ in events:
                pass
        return assistant.name, streamer.name, watcher.name

    assert asyncio.run(first_runs()) == ("assistant", "streamer", "watcher")
    for name in ("helper", "assistant", "streamer", "watcher"):
        assert calls("agent", name) == 1


def test_tools_record_per_tool_name_with_their_agent_type_and_error(instrument: Any) -> None:
    """Each function-tool call is one record named after the tool, with the agent that ran
    it and gen_ai.tool.type "function"; ModelRetry and a raising tool record their class."""
    instrument(PydanticAIInstrumentor)
    planner, critic = _agent("planner"), _agent("critic")

    planner.run_sync("call lookup lookup")
    planner.run_sync("call flaky")
    critic.run_sync("call lookup")
    with pytest.raises(KeyError):
        critic.run_sync("call broken")

    assert _tools() == {
        tool_key("lookup", "planner"): 2,
        tool_key("flaky", "planner", "ModelRetry"): 1,
        tool_key("lookup", "critic"): 1,
        tool_key("broken", "critic", "KeyError"): 1,
    }
    assert calls("agent", "planner") == 2
    assert calls("agent", "critic") == 1
    assert calls("agent", "critic", "KeyError") == 1


def test_agent_run_from_a_tool_is_recorded_under_its_own_name(instrument: Any) -> None:
    """An agent that delegates to another agent from a tool records both runs, each under
    its own name, and the inner agent's tools carry the inner agent's name."""
    instrument(PydanticAIInstrumentor)
    researcher = _agent("researcher")
    boss = Agent(FunctionModel(_reply), name="boss")

    @boss.tool_plain
    async def delegate(q: str) -> str:
        result = await researcher.run("call lookup")
        return result.output

    boss.run_sync("call delegate")

    assert calls("agent", "boss") == 1
    assert calls("agent", "researcher") == 1
    assert _tools() == {tool_key("delegate", "boss"): 1, tool_key("lookup", "researcher"): 1}


def test_failed_run_records_its_exception_class_and_raises_the_same_object(
    instrument: Any,
) -> None:
    """A run whose model raises records error.type=RuntimeError, and the caller receives
    the very exception object the model raised; an error raised by the application inside
    a `run_stream` block is the run's error too, and reaches it unchanged."""
    instrument(PydanticAIInstrumentor)
    planned = RuntimeError("model down")

    def failing(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise planned

    planner = Agent(FunctionModel(failing, stream_function=_slow_stream), name="planner")
    for _ in range(2):
        with pytest.raises(RuntimeError) as info:
            planner.run_sync("hello")
        assert info.value is planned

    mine = LookupError("application gave up")

    async def streamed() -> None:
        async with planner.run_stream("hello"):
            raise mine

    with pytest.raises(LookupError) as info:
        asyncio.run(streamed())
    assert info.value is mine
    assert calls("agent", "planner", "RuntimeError") == 2
    assert calls("agent", "planner", "LookupError") == 1
    assert calls("agent", "planner") == 0


def test_cancelled_run_records_cancelled(instrument: Any) -> None:
    """A run whose task is cancelled while the model works records error.type "cancelled"
    and the caller sees the CancelledError."""
    instrument(PydanticAIInstrumentor)

    async def slow(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        await asyncio.sleep(10)
        return ModelResponse(parts=[TextPart("late")])

    planner = Agent(FunctionModel(slow), name="planner")

    async def cancel_it() -> None:
        task = asyncio.create_task(planner.run("hello"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert calls("agent", "planner", "cancelled") == 1
    assert calls("agent", "planner") == 0


def test_stream_is_timed_to_the_end_of_its_block_with_time_to_first_chunk(
    instrument: Any,
) -> None:
    """`async with run_stream()` over a model that waits 50 ms, then 100 ms more, records
    one run of at least 150 ms and a first chunk after at least 50 ms but before the end."""
    instrument(PydanticAIInstrumentor)
    streamer = _agent("streamer")

    async def consume() -> list[str]:
        async with streamer.run_stream("hello") as stream:
            return [chunk async for chunk in stream.stream_text(delta=True)]

    assert asyncio.run(consume()) == ["hel", "lo"]
    duration = agentstat.testing.sample(
        semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: "streamer"}, field="sum"
    )
    first = agentstat.testing.sample(
        semconv.AGENT_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_AGENT_NAME: "streamer"}, field="sum"
    )
    assert calls("agent", "streamer") == 1
    assert duration is not None and duration >= 0.15
    assert first is not None and 0.05 <= first < duration
    assert (
        agentstat.testing.sample(
            semconv.AGENT_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_AGENT_NAME: "streamer"}
        )
        == 1
    )


def _observe() -> dict[str, Any]:
    """What an application sees of pydantic-ai: outputs, messages, events, exceptions."""
    agent = _agent("observed")
    seen: dict[str, Any] = {}
    result = agent.run_sync("call lookup")
    seen["output"] = result.output
    seen["messages"] = [type(m).__name__ for m in result.all_messages()]
    with pytest.raises(KeyError) as info:
        agent.run_sync("call broken")
    seen["error"] = (type(info.value), info.value.args)

    async def streams() -> None:
        async with agent.run_stream("hello") as stream:
            seen["chunks"] = [c async for c in stream.stream_text(delta=True)]
        async with agent.run_stream_events("call lookup") as events:
            seen["events"] = [type(e).__name__ async for e in events]
        async with agent.iter("hello") as run:
            seen["nodes"] = [type(node).__name__ async for node in run]

    asyncio.run(streams())
    seen["shapes"] = (
        inspect.iscoroutinefunction(Agent.run),
        inspect.iscoroutinefunction(Agent.run_sync),
        hasattr(agent.iter("x"), "__aenter__"),
    )
    return seen


def test_pydantic_ai_behaves_the_same_with_the_integration_on(instrument: Any) -> None:
    """Outputs, message history, streamed chunks, events, graph nodes, exceptions and the
    sync/async shape of the methods are the same with the integration on as without."""
    without = _observe()
    instrument(PydanticAIInstrumentor)
    with_it = _observe()
    assert with_it == without
    assert calls("agent", "observed") > 0


def test_uninstrument_restores_the_methods_and_stops_recording(instrument: Any) -> None:
    """After uninstrument() the framework's methods are its own again and runs record
    nothing."""
    from pydantic_ai.toolsets.function import FunctionToolset

    originals = (Agent.__dict__["iter"], FunctionToolset.__dict__["call_tool"])
    instrumentor = PydanticAIInstrumentor()
    instrumentor.instrument()
    assert Agent.__dict__["iter"] is not originals[0]
    instrumentor.uninstrument()
    assert (Agent.__dict__["iter"], FunctionToolset.__dict__["call_tool"]) == originals
    _agent("planner").run_sync("call lookup")
    assert calls("agent", "planner") == 0
    assert _tools() == {}
