"""OpenAI Agents SDK (``openai-agents``): per-agent, per-tool and per-workflow
durations, on as soon as ``agents`` is imported.

What is recorded:

- ``gen_ai.invoke_agent.duration`` for each agent's part of a run, named ``Agent.name``:
  a run that hands off from ``triage`` to ``writer`` records one ``triage`` and one
  ``writer`` duration; an agent used as a tool (``agent.as_tool()``) records under its
  own name too. ``Runner.run``, ``run_sync`` and ``run_streamed`` alike, each once.
- ``gen_ai.execute_tool.duration`` for each function-tool call, named as the SDK names
  the tool, with ``gen_ai.agent.name`` of the agent that called it and
  ``gen_ai.tool.type`` ``"function"`` (``"extension"`` for MCP tools).
- ``gen_ai.workflow.duration`` for a coordinated run — one in which more than one agent
  ran or the agent had handoffs — named by the run's ``RunConfig(workflow_name=...)``
  (default ``"Agent workflow"``), or by your ``with trace("name"):`` block.
- ``Runner.run_streamed`` runs end when the run's stream is done, and record the time
  to the first model event delivered by ``stream_events()``.

``error.type``: the exception's class when the run fails with one (the SDK re-raises it
through the span's end); otherwise, when the SDK only marked the span as failed — a tool
error it turned into a message for the model, for instance — the fixed value
``"_OTHER"`` (:data:`ERROR_TYPE_UNKNOWN`): span errors carry a message, which never
becomes a label.

Turn it off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_openai_agents`` under
``opentelemetry-instrument``, or ``OpenAIAgentsInstrumentor().uninstrument()``. It is
also off wherever the SDK's tracing is off (``OPENAI_AGENTS_DISABLE_TRACING=1``,
``RunConfig(tracing_disabled=True)``). ``agents.set_trace_processors([...])`` replaces
the SDK's processors but keeps agentstat's while the integration is on.

Why this hook: the SDK runs every agent of a run inside one ``Runner`` call, so only its
tracing layer sees where one agent's part ends and the next one's begins (an agent span
per agent, a function span per tool, a trace per workflow). A ``TracingProcessor``
receives exactly those, synchronously, in the run's own task, with nothing wrapped: no
frame added, no call shape to get wrong, ``run_sync`` and ``run_streamed`` included
(wrapping ``AgentRunner.run`` would see only the starting agent and time a streamed run
as ~0 s). The price is that spans carry only a message on failure (see above), and that
it depends on the SDK's tracing being on, which it is by default.
"""

from __future__ import annotations

import logging
import sys
from time import perf_counter
from types import ModuleType
from typing import Any

from agentstat import semconv
from agentstat.instrumentation._wrappers import log_failure
from agentstat.instrumentation.recording import record
from agentstat.integrations._base import FrameworkInstrumentor, Run, current_agent_name, start_run
from agentstat.integrations._patching import unwrap_all, wrap_all

__all__ = ["ERROR_TYPE_UNKNOWN", "OpenAIAgentsInstrumentor"]

_logger = logging.getLogger("agentstat")

AGENT = "agent"
TOOL = "tool"
WORKFLOW = "workflow"

#: ``error.type`` of a span the SDK marked as failed without an exception to name.
ERROR_TYPE_UNKNOWN = semconv.OTHER


def _propagating_error() -> BaseException | None:
    """The exception propagating through the SDK code that is ending a span, if any.

    ``sys.exc_info()`` alone could be an exception the application is handling around
    its ``Runner`` call; it counts only when one of its traceback frames is an
    ``agents`` frame that is still running (on the current stack).
    """
    exc = sys.exc_info()[1]
    if exc is None:
        return None
    running = set()
    frame = sys._getframe(2)
    while frame is not None:
        running.add(id(frame))
        frame = frame.f_back
    tb = exc.__traceback__
    while tb is not None:
        if (
            id(tb.tb_frame) in running
            and str(tb.tb_frame.f_globals.get("__name__", "")).split(".", 1)[0] == "agents"
        ):
            return exc
        tb = tb.tb_next
    return None


def _failure(span_or_trace: Any) -> BaseException | str | None:
    exc = _propagating_error()
    if exc is not None:
        return exc
    return ERROR_TYPE_UNKNOWN if getattr(span_or_trace, "error", None) else None


class _Workflow:
    __slots__ = ("agents", "handoffs", "name", "start")

    def __init__(self, name: str) -> None:
        self.start = perf_counter()
        self.name = name
        self.agents = 0
        self.handoffs = False


class AgentstatProcessor:
    """The ``TracingProcessor`` agentstat registers (once per process; switched by
    :attr:`enabled`, since the SDK can add processors but not remove one)."""

    def __init__(self) -> None:
        self.enabled = False
        self._runs: dict[str, tuple[Run, bool]] = {}  # span_id -> (open run, is an agent)
        self._agents: dict[str, list[Run]] = {}  # trace_id -> open agent runs
        self._workflows: dict[str, _Workflow] = {}  # trace_id -> open trace

    # -- traces --------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if not self.enabled:
            return
        try:
            self._workflows[trace.trace_id] = _Workflow(trace.name)
        except Exception:  # a processor must never fail the SDK's run
            log_failure()

    def on_trace_end(self, trace: Any) -> None:
        workflow = self._workflows.pop(getattr(trace, "trace_id", None), None)
        if workflow is None or not (workflow.agents > 1 or workflow.handoffs):
            return
        try:
            record(
                WORKFLOW,
                workflow.name or "Agent workflow",
                perf_counter() - workflow.start,
                error=_propagating_error(),
            )
        except Exception:  # a processor must never fail the SDK's run
            log_failure()

    # -- spans ---------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        if not self.enabled:
            return
        try:
            self._start(span)
        except Exception:  # a processor must never fail the SDK's run
            log_failure()

    def _start(self, span: Any) -> None:
        if span.span_id in self._runs:  # registered twice: count once
            return
        data = span.span_data
        kind = getattr(data, "type", None)
        if kind == "agent":
            run = start_run(AGENT, data.name or "Agent", key=span.span_id)
            if run is None:
                return
            self._runs[span.span_id] = (run, True)
            self._agents.setdefault(span.trace_id, []).append(run)
            workflow = self._workflows.get(span.trace_id)
            if workflow is not None:
                workflow.agents += 1
                workflow.handoffs = workflow.handoffs or bool(data.handoffs)
        elif kind == "function":
            tool_type = "extension" if getattr(data, "mcp_data", None) else "function"
            run = start_run(
                TOOL,
                data.name or "function",
                key=span.span_id,
                agent_name=current_agent_name(),
                tool_type=tool_type,
            )
            if run is not None:
                self._runs[span.span_id] = (run, False)

    def on_span_end(self, span: Any) -> None:
        found = self._runs.pop(span.span_id, None)
        if found is None:
            return
        try:
            self._end(span, *found)
        except Exception:  # a processor must never fail the SDK's run
            log_failure()

    def _end(self, span: Any, run: Run, is_agent: bool) -> None:
        if is_agent:
            open_agents = self._agents.get(span.trace_id)
            if open_agents is not None:
                if run in open_agents:
                    open_agents.remove(run)
                if not open_agents:
                    self._agents.pop(span.trace_id, None)
        run.finish(_failure(span) if span.error else None)

    def first_chunk(self, trace_id: str) -> None:
        """A streamed run of trace ``trace_id`` delivered its first model event."""
        open_agents = self._agents.get(trace_id)
        if open_agents:
            open_agents[-1].first_chunk()

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


PROCESSOR = AgentstatProcessor()
_added = False


def _registered() -> bool:
    """Whether :data:`PROCESSOR` is among the SDK's processors (a private list; when it
    cannot be read, whether agentstat added it — a second registration counts once)."""
    from agents.tracing import get_trace_provider

    multi = getattr(get_trace_provider(), "_multi_processor", None)
    processors = getattr(multi, "_processors", None)
    if isinstance(processors, tuple | list):
        return any(p is PROCESSOR for p in processors)
    return _added


def _keep_ours(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``set_trace_processors([...])`` replaces every processor: keep agentstat's."""
    processors = list(kwargs.pop("processors") if "processors" in kwargs else args[0])
    if not any(p is PROCESSOR for p in processors):
        processors.append(PROCESSOR)
    return wrapped(processors, *args[1:], **kwargs)


def _stream_events(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    events = wrapped(*args, **kwargs)
    if not PROCESSOR.enabled:
        return events
    return _until_first_model_event(events, instance)


async def _until_first_model_event(events: Any, result: Any) -> Any:
    """The SDK's event stream as it is; the first model event marks the first chunk.
    Closing this stream closes the SDK's (which cancels the run, as it does unwrapped)."""
    try:
        async for event in events:
            if getattr(event, "type", None) == "raw_response_event":
                trace = getattr(result, "trace", None)
                if trace is not None:
                    PROCESSOR.first_chunk(trace.trace_id)
                yield event
                break
            yield event
        async for event in events:
            yield event
    finally:
        await events.aclose()


_TARGETS = (("agents.result", "RunResultStreaming", "stream_events", _stream_events),)
#: Wrapped where the SDK has it (a module of its own since 0.x; without it, an
#: application's ``set_trace_processors`` drops agentstat's processor).
_OPTIONAL_TARGETS = (
    ("agents.tracing.provider", "SynchronousMultiTracingProcessor", "set_processors", _keep_ours),
)


class OpenAIAgentsInstrumentor(FrameworkInstrumentor):
    """Agents, tools and workflows of the OpenAI Agents SDK (entry point
    ``agentstat_openai_agents``)."""

    framework = "agents"
    distribution = "openai-agents"
    supported = ">= 0.2, < 1"

    def _patch(self, module: ModuleType) -> None:
        global _added
        from agents.tracing import add_trace_processor

        if not _registered():
            _make_tracing_processor()
            add_trace_processor(PROCESSOR)  # type: ignore[arg-type]
            _added = True
        PROCESSOR.enabled = True
        wrap_all(_TARGETS)
        try:
            wrap_all(_OPTIONAL_TARGETS)
        except (ImportError, AttributeError, KeyError):
            _logger.debug("agentstat: openai-agents has no set_processors to keep ours in")

    def _unpatch(self) -> None:
        PROCESSOR.enabled = False
        unwrap_all(_TARGETS + _OPTIONAL_TARGETS)


def _make_tracing_processor() -> None:
    """Make :data:`PROCESSOR` a ``TracingProcessor`` (the SDK checks nothing, but its
    abstract base is the documented type; it is imported only with the SDK)."""
    from agents.tracing import TracingProcessor

    if not isinstance(PROCESSOR, TracingProcessor):
        TracingProcessor.register(AgentstatProcessor)
