"""pydantic-ai: one ``gen_ai.invoke_agent.duration`` per agent run, one
``gen_ai.execute_tool.duration`` per function-tool call, on as soon as ``pydantic_ai``
is imported.

What is recorded:

- every run of an :class:`pydantic_ai.Agent` — ``run``, ``run_sync``, ``run_stream``,
  ``run_stream_events``, ``run_stream_sync``, ``iter`` — once, named ``agent.name``
  as pydantic-ai itself knows it at the end of its own name inference (an unnamed
  ``helper = Agent(model)`` is ``"helper"``), the class name when it has none;
  ``error.type`` is the class of the exception that left the run;
- streamed runs (``run_stream*``, or a run with an ``event_stream_handler``) end when
  their ``async with`` block / stream ends, and record the time to the model's first
  streamed event;
- every function-tool call (``@agent.tool``, ``@agent.tool_plain``, ``tools=[...]``,
  a ``FunctionToolset``) under the tool's name, with ``gen_ai.agent.name`` of the agent
  running it and ``gen_ai.tool.type="function"``; a tool asking the model to retry
  records ``error.type="ModelRetry"``.

Turn it off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_pydantic_ai`` under
``opentelemetry-instrument``, or ``PydanticAIInstrumentor().uninstrument()`` in code.

Why these hooks:

- ``Agent.iter`` is the one method every run shape goes through (``run`` drives it,
  ``run_sync`` runs ``run``, the streaming methods enter it with ``infer_name=False``,
  ``WrapperAgent`` delegates to it), so wrapping it alone gives exactly one record per
  logical run with no delegation to untangle. It is an async context manager: the
  proxy starts the clock before entering it and ends the run on exit, so a stream is
  timed to the end of its block, failures inside the block included.
- ``run``/``run_sync``/``run_stream`` infer an unnamed agent's name from their caller's
  frame *before* they call ``iter``; a wrapper on those methods would be that caller
  and break the inference (the agent would stay unnamed). Nothing here adds a frame
  there, and the name is read after the real ``iter`` has been entered.
- ``FunctionToolset.call_tool`` is the public method that runs a function tool after
  its arguments are validated: it times the tool body itself (thread-pool hop for sync
  tools included) and sees its exception. The tool manager's private methods would
  also see output and external tools, which are not executions.
- ``StreamedResponse.__aiter__`` (only used for streamed model requests) gives the
  first chunk; it is wrapped only while a run has not yet seen one.
- pydantic-ai's own OpenTelemetry instrumentation (``Agent.instrument_all()``) makes
  spans and token metrics but no duration histogram, and costs ~1.4 ms per run;
  these hooks cost a few µs (``python -m benchmarks --only frameworks``).
"""

from __future__ import annotations

import contextvars
from time import perf_counter
from typing import Any

from agentstat.integrations._base import Run, current_agent_name, start_run
from agentstat.integrations._patching import WrappingInstrumentor, acall

__all__ = ["PydanticAIInstrumentor"]

AGENT = "agent"
TOOL = "tool"
TOOL_TYPE = "function"

#: The run whose model stream has not produced its first chunk yet (streams only).
_WAITING: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "agentstat_pydantic_ai_waiting", default=None
)


def _agent_name(agent: Any) -> str:
    return getattr(agent, "name", None) or type(agent).__name__


class _TimedRun:
    """The async context manager ``Agent.iter`` returned, timed from entry to exit."""

    __slots__ = ("_agent", "_cm", "_run", "_token")

    def __init__(self, cm: Any, agent: Any) -> None:
        self._cm = cm
        self._agent = agent
        self._run: Run | None = None
        self._token: Any = None

    async def __aenter__(self) -> Any:
        start = perf_counter()
        try:
            value = await self._cm.__aenter__()
        except BaseException as exc:
            run = start_run(AGENT, _agent_name(self._agent), key=self._agent, start=start)
            if run is not None:
                run.finish(exc)
            raise
        # Entered: pydantic-ai has inferred the agent's name by now.
        run = self._run = start_run(AGENT, _agent_name(self._agent), key=self._agent, start=start)
        if run is not None:
            self._token = _WAITING.set(run)
        return value

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        run = self._run
        if run is None:
            return await self._cm.__aexit__(exc_type, exc, tb)
        self._run = None
        try:  # noqa: SIM105 -- contextlib.suppress costs ~0.5 µs per run here
            _WAITING.reset(self._token)
        except ValueError:  # exited in another context than it was entered in
            pass
        try:
            handled = await self._cm.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            run.finish(raised)
            raise
        run.finish(None if exc_type is None or handled else (exc or exc_type))
        return handled

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cm, name)


def _iter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _TimedRun(wrapped(*args, **kwargs), instance)


async def _call_tool(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    # FunctionToolset.call_tool(name, tool_args, ctx, tool)
    name = args[0] if args else kwargs.get("name")
    run = None
    if isinstance(name, str) and name:
        run = start_run(TOOL, name, agent_name=current_agent_name(), tool_type=TOOL_TYPE)
    return await acall(run, wrapped, args, kwargs)


def _stream_iter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    iterator = wrapped(*args, **kwargs)
    run = _WAITING.get()
    if run is None:
        return iterator
    _WAITING.set(None)  # one first chunk per run; the run's exit restores the variable
    return _first_chunk(iterator, run)


async def _first_chunk(iterator: Any, run: Run) -> Any:
    async for event in iterator:
        run.first_chunk()
        yield event
        break
    async for event in iterator:
        yield event


_TARGETS = (
    ("pydantic_ai.agent", "Agent", "iter", _iter),
    ("pydantic_ai.toolsets.function", "FunctionToolset", "call_tool", _call_tool),
    ("pydantic_ai.models", "StreamedResponse", "__aiter__", _stream_iter),
)


class PydanticAIInstrumentor(WrappingInstrumentor):
    """Agent runs and function-tool calls of pydantic-ai (entry point
    ``agentstat_pydantic_ai``)."""

    framework = "pydantic_ai"
    distribution = "pydantic-ai-slim"
    supported = ">= 1.0, < 3"
    targets = _TARGETS
