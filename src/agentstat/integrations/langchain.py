"""LangGraph and LangChain: one duration per graph run, per tool call, and per
multi-agent workflow, on as soon as ``langgraph`` / ``langchain_core`` is imported.

What is recorded:

- ``gen_ai.invoke_agent.duration`` for every run of a LangGraph graph —
  ``create_react_agent(..., name="researcher")``, LangChain's ``create_agent``, any
  ``StateGraph(...).compile(name=...)`` — named ``graph.name`` (``"LangGraph"`` when you
  gave none). ``invoke``, ``ainvoke``, ``stream``, ``astream`` and the event streams are
  each one record. Streams are timed from the first ``next()`` to their end and record
  the time to the first chunk; a stream its consumer abandons records
  ``error.type="cancelled"``.
- A graph that runs other graphs (a supervisor whose nodes call agents, a graph of
  agents, a subgraph) records each inner graph under its own name, and once
  ``gen_ai.workflow.duration`` with ``gen_ai.workflow.name`` = the outermost graph's name.
- ``gen_ai.execute_tool.duration`` for every LangChain tool call (``@tool``,
  ``StructuredTool``, any ``BaseTool``; from a ``ToolNode`` or called directly), named
  ``tool.name``, with ``gen_ai.agent.name`` of the graph running it and
  ``gen_ai.tool.type="function"``; ``error.type`` is the class of the exception that
  leaves the tool (a ``ToolException`` the tool handles itself is returned to the
  model as a message, not raised, so it is a success for the caller).

Turn it off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_langgraph`` (graphs)
and ``agentstat_langchain`` (tools) under ``opentelemetry-instrument``, or
``LangGraphInstrumentor().uninstrument()`` / ``LangChainInstrumentor().uninstrument()``.

Why these hooks: LangChain callbacks (a handler registered with
``register_configure_hook``) carry the same names and exception classes, but once a
handler is present every node, chain and model call of a graph goes through the callback
manager: ~0.3 ms per graph run, against a few µs for wrapping the two methods every run
of every compiled graph (``Pregel``) goes through, ``stream`` and ``astream`` —
``invoke`` iterates ``stream`` and ``ainvoke`` ``astream``, and the event streams use
``astream`` too — and ``BaseTool.run``/``arun`` (``invoke``/``ainvoke`` call them; ``arun``
of a sync tool calls ``_run`` in an executor, not ``run``). Wrapping only the streams
makes one record per run by construction; a stream started by ``invoke``/``ainvoke`` (its
caller's code, one frame up) records no time to first chunk: its caller gets no chunks.
A graph running itself again inside a run (same object, same context) is one run.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from time import perf_counter
from types import CodeType, ModuleType
from typing import Any

from agentstat.instrumentation.recording import record
from agentstat.integrations._base import Run, current_agent_name, start_run
from agentstat.integrations._patching import WrappingInstrumentor, acall, call, stepped_stream

__all__ = ["LangChainInstrumentor", "LangGraphInstrumentor"]

AGENT = "agent"
TOOL = "tool"
WORKFLOW = "workflow"
TOOL_TYPE = "function"

#: Set by the outermost graph run of a context: [graph runs started inside it].
_OUTERMOST: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "agentstat_langgraph_outermost", default=None
)


class _GraphRun:
    """One graph run: its agent :class:`Run`, and the workflow bookkeeping when it is
    the outermost graph of its context.

    Started in the body of a stream, it is detached at once and open (in ``ACTIVE``
    and, for the outermost graph, ``_OUTERMOST``) only while the graph's generator
    runs a step (:meth:`step`): between chunks the consumer's context is its own."""

    __slots__ = ("name", "nested", "run", "start", "token")

    def __init__(self, run: Run, name: str, start: float) -> None:
        self.run = run
        self.name = name
        self.start = start
        outer = _OUTERMOST.get()
        if outer is None:
            self.nested: list[int] | None = [0]
            self.token: Any = _OUTERMOST.set(self.nested)
        else:
            outer[0] += 1
            self.nested = None
            self.token = None

    def detach(self) -> None:
        self.run.detach()
        token, self.token = self.token, None
        if token is not None:
            try:  # noqa: SIM105
                _OUTERMOST.reset(token)
            except ValueError:
                pass

    def step(self) -> _Step:
        """Context manager: the run open around one ``next``/``anext``/``close``."""
        return _Step(self)

    def first_chunk(self) -> None:
        self.run.first_chunk()

    def finish(self, error: BaseException | None = None) -> None:
        self.run.finish(error)
        nested, self.nested = self.nested, None  # once
        if nested is None:
            return
        token, self.token = self.token, None
        if token is not None:
            try:  # noqa: SIM105 -- contextlib.suppress costs ~0.5 µs per run here
                _OUTERMOST.reset(token)
            except (ValueError, RuntimeError):  # ended in another context than it started in
                pass
        if nested[0]:
            with contextlib.suppress(Exception):  # recording never raises into the graph
                record(WORKFLOW, self.name, perf_counter() - self.start, error=error)


class _Step:
    """:meth:`_GraphRun.step`: restores exactly the previous values on exit."""

    __slots__ = ("active", "graph_run", "token")

    def __init__(self, graph_run: _GraphRun) -> None:
        self.graph_run = graph_run
        self.active = graph_run.run.attached()
        self.token: Any = None

    def __enter__(self) -> None:
        self.active.__enter__()
        nested = self.graph_run.nested
        if nested is not None:
            self.token = _OUTERMOST.set(nested)

    def __exit__(self, *exc_info: object) -> None:
        token, self.token = self.token, None
        if token is not None:
            try:  # noqa: SIM105
                _OUTERMOST.reset(token)
            except (ValueError, RuntimeError):  # the step ended in another context
                pass
        self.active.__exit__(*exc_info)


def _graph_name(graph: Any) -> str:
    name = getattr(graph, "name", None)
    return name if isinstance(name, str) and name else type(graph).__name__


def _start(graph: Any) -> _GraphRun | None:
    name, start = _graph_name(graph), perf_counter()
    run = start_run(AGENT, name, key=graph, start=start)
    return None if run is None else _GraphRun(run, name, start)


#: Code of the methods that run a graph by iterating its own stream (``invoke`` and
#: ``ainvoke``): a stream they start is a whole run, but not a stream for the caller.
_DELEGATING: set[CodeType] = set()


def _called_to_stream() -> bool:
    """Whether the caller of ``stream``/``astream`` wants the chunks (not ``invoke``)."""
    frame = sys._getframe(2)  # 0: here, 1: the wrapper, 2: the caller
    for _ in range(3):  # wrapt's pure-Python fallback adds frames in between
        if frame is None:
            return True
        if frame.f_code in _DELEGATING:
            return False
        frame = frame.f_back
    return True


def _stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _timed_stream(wrapped(*args, **kwargs), instance, _called_to_stream())


def _timed_stream(chunks: Any, graph: Any, streaming: bool) -> Any:
    """``Pregel.stream``'s generator, timed from its first ``next()`` to its end, each
    step with the run open around it (:meth:`_GraphRun.step`)."""
    graph_run = _start(graph)
    if graph_run is None:
        return (yield from chunks)
    graph_run.detach()
    return (yield from stepped_stream(chunks, graph_run, graph_run.step, first_chunk=streaming))


def _astream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _timed_astream(wrapped(*args, **kwargs), instance, _called_to_stream())


async def _timed_astream(chunks: Any, graph: Any, streaming: bool) -> Any:
    """``Pregel.astream``'s async generator, timed from its first ``anext()`` to its
    end, each step with the run open around it; closing this one closes the graph's."""
    graph_run = _start(graph)
    if graph_run is None:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()
        return
    graph_run.detach()
    try:
        first = streaming
        while True:
            try:
                with graph_run.step():
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            if first:
                first = False
                graph_run.first_chunk()
            yield chunk
    except BaseException as exc:
        try:
            with graph_run.step():
                await chunks.aclose()
        finally:
            graph_run.finish(exc)
        raise
    graph_run.finish()


def _tool_run(tool: Any) -> Run | None:
    name = getattr(tool, "name", None)
    if not isinstance(name, str) or not name:
        name = type(tool).__name__
    return start_run(TOOL, name, key=tool, agent_name=current_agent_name(), tool_type=TOOL_TYPE)


def _run_tool(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return call(_tool_run(instance), wrapped, args, kwargs)


async def _arun_tool(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return await acall(_tool_run(instance), wrapped, args, kwargs)


_GRAPH_TARGETS = (
    ("langgraph.pregel.main", "Pregel", "stream", _stream),
    ("langgraph.pregel.main", "Pregel", "astream", _astream),
)
_TOOL_TARGETS = (
    ("langchain_core.tools.base", "BaseTool", "run", _run_tool),
    ("langchain_core.tools.base", "BaseTool", "arun", _arun_tool),
)


class LangGraphInstrumentor(WrappingInstrumentor):
    """Graph runs and multi-agent workflows of LangGraph (entry point
    ``agentstat_langgraph``)."""

    # ``langgraph`` is a namespace package (langgraph, -prebuilt, -checkpoint share it):
    # importing it runs no import hook, so the hook waits for the package of ``Pregel``.
    framework = "langgraph.pregel"
    distribution = "langgraph"
    supported = ">= 1.0, < 2"
    targets = _GRAPH_TARGETS

    def _patch(self, module: ModuleType) -> None:
        from langgraph.pregel.main import Pregel

        for name in ("invoke", "ainvoke"):
            code = getattr(Pregel.__dict__.get(name), "__code__", None)
            if code is not None:
                _DELEGATING.add(code)
        super()._patch(module)


class LangChainInstrumentor(WrappingInstrumentor):
    """Tool calls of LangChain tools (entry point ``agentstat_langchain``)."""

    framework = "langchain_core"
    distribution = "langchain-core"
    supported = ">= 0.3, < 2"
    targets = _TOOL_TARGETS
