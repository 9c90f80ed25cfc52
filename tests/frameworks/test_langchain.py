"""The LangGraph/LangChain integration with the real packages and a small local chat
model: one record per graph run whatever the entry point, tools with their agent, a
graph of agents as a workflow, streams timed to their end, behaviour unchanged."""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

import pytest

pytest.importorskip("langgraph", reason="langgraph is not installed (see scripts/test)")

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

import agentstat.testing
from agentstat import semconv
from agentstat.integrations.langchain import LangChainInstrumentor, LangGraphInstrumentor
from tests.frameworks import _shared
from tests.frameworks._shared import TOOLS, tool_key

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent moved to langchain.agents in 1.0
    from langgraph.prebuilt import create_react_agent

calls = agentstat.testing.calls
BOTH = (LangGraphInstrumentor, LangChainInstrumentor)


class FakeChat(BaseChatModel):
    """Calls the tools named in a "call a b" prompt once, then answers; sleeps `delay`."""

    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeChat:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.delay:
            time.sleep(self.delay)
        last = messages[-1]
        words = str(last.content).split()
        if isinstance(last, HumanMessage) and words and words[0] == "call":
            tool_calls = [
                {"name": name, "args": {"q": "x"}, "id": f"call-{i}"}
                for i, name in enumerate(words[1:])
            ]
            message = AIMessage(content="", tool_calls=tool_calls)
        else:
            message = AIMessage(content=f"done after {len(messages)} messages")
        return ChatResult(generations=[ChatGeneration(message=message)])


lookup = tool(_shared.lookup)
broken = tool(_shared.broken)


def _agent(name: str, delay: float = 0.0) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(FakeChat(delay=delay), [lookup, broken], name=name)


def _team() -> Any:
    """A graph of two agents: researcher, then writer."""
    researcher, writer = _agent("researcher"), _agent("writer")

    def research(state: MessagesState) -> dict:
        return {"messages": researcher.invoke(state)["messages"][-1:]}

    def write(state: MessagesState) -> dict:
        result = writer.invoke({"messages": [HumanMessage(state["messages"][0].content)]})
        return {"messages": result["messages"][-1:]}

    graph = StateGraph(MessagesState).add_sequence([("research", research), ("write", write)])
    graph.add_edge(START, "research")
    return graph.compile(name="team")


def _ask(text: str) -> dict:
    return {"messages": [HumanMessage(text)]}


def test_every_entry_point_records_one_run_per_graph_name(instrument: Any) -> None:
    """invoke, ainvoke, stream and astream (invoke runs stream inside) each record
    exactly one run under the graph's name; only the streams a caller iterates record a
    time to first chunk."""
    instrument(*BOTH)
    researcher, writer = _agent("researcher"), _agent("writer")

    for _ in range(2):
        researcher.invoke(_ask("hello"))
    list(researcher.stream(_ask("hello")))
    writer.invoke(_ask("hello"))

    async def run_async() -> None:
        await researcher.ainvoke(_ask("hello"))
        async for _ in researcher.astream(_ask("hello"), stream_mode="values"):
            pass

    asyncio.run(run_async())

    assert calls("agent", "researcher") == 5
    assert calls("agent", "writer") == 1
    first_chunks = agentstat.testing.series(semconv.AGENT_TIME_TO_FIRST_CHUNK)
    assert first_chunks == {("invoke_agent", "researcher"): 2}
    assert set(agentstat.testing.series(semconv.AGENT_DURATION)) == {
        ("invoke_agent", "researcher", ""),
        ("invoke_agent", "writer", ""),
    }


def test_tools_record_per_tool_name_with_the_graph_running_them(instrument: Any) -> None:
    """Tool calls from a ToolNode are one record each, named after the tool, with the
    agent graph that ran them; a tool called outside any graph has no agent name; a
    raising tool records its exception class."""
    instrument(*BOTH)
    researcher = _agent("researcher")

    researcher.invoke(_ask("call lookup lookup"))

    async def run_async() -> None:
        await researcher.ainvoke(_ask("call lookup"))

    asyncio.run(run_async())
    lookup.invoke({"q": "direct"})
    with pytest.raises(KeyError):  # ToolNode lets a tool's own errors through
        researcher.invoke(_ask("call broken"))

    assert agentstat.testing.series(TOOLS) == {
        tool_key("lookup", "researcher"): 3,
        tool_key("lookup"): 1,
        tool_key("broken", "researcher", "KeyError"): 1,
    }
    assert calls("agent", "researcher", "KeyError") == 1


def test_graph_of_agents_records_each_agent_and_one_workflow(instrument: Any) -> None:
    """A graph whose nodes run two agent graphs records team, researcher and writer once
    each per run and one gen_ai.workflow.duration named "team", from invoke and from
    ainvoke (nodes in worker threads); a lone agent records no workflow."""
    instrument(*BOTH)
    team = _team()
    team.invoke(_ask("call lookup"))
    asyncio.run(team.ainvoke(_ask("hello")))
    _agent("solo").invoke(_ask("hello"))

    assert calls("agent", "team") == 2
    assert calls("agent", "researcher") == 2
    assert calls("agent", "writer") == 2
    assert calls("agent", "solo") == 1
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {
        ("invoke_workflow", "team", ""): 2
    }
    assert agentstat.testing.series(TOOLS) == {
        tool_key("lookup", "researcher"): 1,
        tool_key("lookup", "writer"): 1,
    }


def test_failing_agent_fails_its_workflow_with_the_same_error_type(instrument: Any) -> None:
    """When an agent inside a graph of agents raises, the agent, the outer graph and the
    workflow each record the exception's class."""
    instrument(*BOTH)
    team = _team()
    with pytest.raises(KeyError):
        team.invoke(_ask("call broken"))
    assert calls("agent", "researcher", "KeyError") == 1
    assert calls("agent", "team", "KeyError") == 1
    assert calls("agent", "writer") == calls("agent", "writer", "KeyError") == 0
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {
        ("invoke_workflow", "team", "KeyError"): 1
    }


def test_failed_graph_records_the_exception_class_and_raises_the_same_object(
    instrument: Any,
) -> None:
    """A node that raises fails the run: error.type is the class, and the caller gets
    the very exception object the node raised, from invoke and from stream."""
    instrument(*BOTH)
    planned = ValueError("bad state")

    def explode(state: MessagesState) -> dict:
        raise planned

    graph = StateGraph(MessagesState)
    graph.add_node("explode", explode)
    graph.add_edge(START, "explode")
    failing = graph.compile(name="failing")

    with pytest.raises(ValueError) as info:
        failing.invoke(_ask("hello"))
    assert info.value is planned
    with pytest.raises(ValueError) as info:
        list(failing.stream(_ask("hello")))
    assert info.value is planned
    assert calls("agent", "failing", "ValueError") == 2
    assert calls("agent", "failing") == 0


def test_stream_is_timed_to_its_end_with_time_to_first_chunk(instrument: Any) -> None:
    """A stream over a model that takes 50 ms per call is one run lasting at least the two
    model calls, with the first chunk after at least 50 ms; an abandoned stream records
    error.type "cancelled"."""
    instrument(*BOTH)
    slow = _agent("slow", delay=0.05)

    chunks = list(slow.stream(_ask("call lookup"), stream_mode="updates"))
    assert len(chunks) == 3  # agent, tools, agent

    attributes = {semconv.GEN_AI_AGENT_NAME: "slow"}
    duration = agentstat.testing.sample(semconv.AGENT_DURATION, attributes, field="sum")
    first = agentstat.testing.sample(semconv.AGENT_TIME_TO_FIRST_CHUNK, attributes, field="sum")
    assert duration is not None and duration >= 0.1
    assert first is not None and 0.05 <= first < duration

    stream = slow.stream(_ask("call lookup"), stream_mode="updates")
    next(stream)
    stream.close()
    assert calls("agent", "slow") == 1
    assert calls("agent", "slow", "cancelled") == 1


def test_async_stream_abandoned_by_its_consumer_records_cancelled(instrument: Any) -> None:
    """An astream the consumer stops after one chunk (aclose) records one cancelled run
    and closes the graph's own stream."""
    instrument(*BOTH)
    slow = _agent("slow")

    async def abandon() -> None:
        stream = slow.astream(_ask("call lookup"), stream_mode="updates")
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(abandon())
    assert calls("agent", "slow", "cancelled") == 1
    assert calls("agent", "slow") == 0


def test_a_held_stream_does_not_hide_later_runs_of_its_graph(instrument: Any) -> None:
    """A stream whose consumer keeps it between chunks is open only while the graph
    runs: runs of the same graph in between (invoke, ainvoke inside a held astream)
    are each recorded once, and the held stream is one run of its own at its end."""
    instrument(*BOTH)
    held = _agent("held")
    stream = held.stream(_ask("call lookup"), stream_mode="updates")
    next(stream)
    for _ in range(3):
        held.invoke(_ask("call lookup"))
    assert calls("agent", "held") == 3
    assert len(list(stream)) == 2
    assert calls("agent", "held") == 4

    async def hold() -> None:
        stream = held.astream(_ask("hello"), stream_mode="updates")
        await stream.__anext__()
        await held.ainvoke(_ask("hello"))
        await held.ainvoke(_ask("hello"))
        assert [chunk async for chunk in stream] == []

    asyncio.run(hold())
    assert calls("agent", "held") == 7
    assert calls("agent", "held", "cancelled") == 0
    assert agentstat.testing.series(TOOLS) == {tool_key("lookup", "held"): 4}


def test_no_workflow_is_invented_by_an_unrelated_graph_run_while_a_stream_is_held(
    instrument: Any,
) -> None:
    """A graph run while another graph's stream waits for its consumer is not nested in
    it: closing the held stream records it cancelled and no workflow. A graph of agents
    streamed chunk by chunk still records its one workflow."""
    instrument(*BOTH)
    held = _agent("held")
    stream = held.stream(_ask("hello"), stream_mode="updates")
    next(stream)
    _agent("other").invoke(_ask("hello"))
    stream.close()
    assert calls("agent", "other") == 1
    assert calls("agent", "held", "cancelled") == 1
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {}

    team = _team().stream(_ask("hello"), stream_mode="updates")
    next(team)
    _agent("other").invoke(_ask("hello"))
    assert len(list(team)) == 1
    assert calls("agent", "other") == 2
    assert calls("agent", "researcher") == calls("agent", "writer") == 1
    assert agentstat.testing.series(semconv.WORKFLOW_DURATION) == {
        ("invoke_workflow", "team", ""): 1
    }


def _observe() -> dict[str, Any]:
    """What an application sees of LangGraph: results, chunks, events, exceptions."""
    agent = _agent("observed")
    seen: dict[str, Any] = {}
    seen["invoke"] = [m.content for m in agent.invoke(_ask("call lookup"))["messages"]]
    seen["stream"] = [list(chunk) for chunk in agent.stream(_ask("call lookup"))]
    seen["tool"] = lookup.invoke({"q": "x"})
    with pytest.raises(KeyError) as info:
        broken.invoke({"q": "x"})
    seen["error"] = (type(info.value), info.value.args)

    async def run_async() -> None:
        result = await agent.ainvoke(_ask("call lookup"))
        seen["ainvoke"] = [m.content for m in result["messages"]]
        seen["astream"] = [list(c) async for c in agent.astream(_ask("hi"), stream_mode="updates")]
        events = agent.astream_events(_ask("hi"), version="v2")
        seen["events"] = [event["event"] async for event in events]

    asyncio.run(run_async())
    return seen


def test_langgraph_behaves_the_same_with_the_integration_on(instrument: Any) -> None:
    """Results, streamed chunks, astream_events events, tool results and exceptions are
    the same with the integration on as without."""
    without = _observe()
    instrument(*BOTH)
    with_it = _observe()
    assert with_it == without
    assert calls("agent", "observed") == 5


def test_uninstrument_restores_the_methods_and_stops_recording(instrument: Any) -> None:
    """After uninstrument() Pregel and BaseTool have their own methods again and runs
    record nothing."""
    from langchain_core.tools import BaseTool
    from langgraph.pregel import Pregel

    names = ("stream", "astream")
    originals = [Pregel.__dict__[n] for n in names] + [BaseTool.__dict__["run"]]
    instrumentors = [cls() for cls in BOTH]
    for instrumentor in instrumentors:
        instrumentor.instrument()
    assert Pregel.__dict__["stream"] is not originals[0]
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    assert [Pregel.__dict__[n] for n in names] + [BaseTool.__dict__["run"]] == originals
    _agent("researcher").invoke(_ask("call lookup"))
    assert calls("agent", "researcher") == 0
    assert agentstat.testing.series(TOOLS) == {}
