"""CrewAI: per-agent, per-tool and per-crew durations from CrewAI's own event bus.

On as soon as ``crewai`` is imported (``opentelemetry-instrument``, or
``CrewAIInstrumentor().instrument()`` in code); nothing to configure::

    crew = Crew(agents=[researcher, writer], tasks=[...], name="newsroom")
    crew.kickoff()
    # gen_ai.workflow.duration{gen_ai.workflow.name="newsroom"}            one per kickoff
    # gen_ai.invoke_agent.duration{gen_ai.agent.name="Researcher"}         one per task run
    # gen_ai.execute_tool.duration{gen_ai.tool.name="search",
    #                              gen_ai.agent.name="Researcher"}         one per tool use

Names: an agent is named by its ``role``, a tool by its ``name``, a crew by its ``name``
(CrewAI's default is ``"crew"``). ``Agent.kickoff()`` outside a crew records the agent
the same way. ``gen_ai.tool.type`` is ``function``.

**The hook, and why.** CrewAI emits paired events for everything that matters here:
``AgentExecutionStarted/Completed/Error``, ``LiteAgentExecutionStarted/Completed/Error``
(``Agent.kickoff``), ``ToolUsageStarted/Finished/Error`` and
``CrewKickoffStarted/Completed/Failed``. Each closing event carries the id of its
opening one (``started_event_id``), and every event carries the time it was created
(``timestamp``). CrewAI runs listeners in a thread pool, after the fact, so a listener
cannot time anything with its own clock; the duration is the difference of the two
events' timestamps (microsecond wall-clock readings taken on the emitting thread). A
listener is exact for every way CrewAI runs agents — sequential and hierarchical
crews, ``kickoff_async``, ``kickoff_for_each``, delegation, retries — where wrapping
methods of its pydantic-model agents would not be (their instances cannot be patched,
and one method serves every role). Cost on the run itself: none measurable (CrewAI
already dispatches every event to its own listeners; ours runs in its pool).

Events CrewAI replays from a checkpoint are not recorded again. Records land a moment
after the run ends: the crew's own record when its
``CrewKickoffCompleted`` listener has run. Tests and short scripts call
``crewai_event_bus.flush()`` before reading.

**Errors.** CrewAI's agent and crew failure events carry the message only, so their
``error.type`` is the fixed value :data:`ERROR_TYPE`, ``_OTHER`` (the semantic
conventions' value for an error whose type is unknown, as for the OpenAI Agents
integration) — never the text. A tool failure event carries the exception: its class
name is used. Each failed attempt CrewAI retries is its own agent record.

Off: ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_crewai``, or
``CrewAIInstrumentor().uninstrument()``. ``suppress_instrumentation()`` around a
kickoff skips its records (CrewAI copies the emitting context into its listeners).
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import ModuleType
from typing import Any

from agentstat import semconv
from agentstat.instrumentation import _wrappers
from agentstat.instrumentation.recording import record
from agentstat.integrations._base import FrameworkInstrumentor

__all__ = ["ERROR_TYPE", "CrewAIInstrumentor"]

#: ``error.type`` of an agent or crew failure: CrewAI reports those as message text.
ERROR_TYPE = semconv.OTHER
#: ``gen_ai.tool.type`` of CrewAI tools (run by the agent, client side).
TOOL_TYPE = "function"

#: Opening events waiting for their closing event, and the reverse (listeners run in a
#: pool, so a closing event can be handled first); bounded against runs that never end.
_MAX_PENDING = 10_000


class _Pairs:
    """Matches closing events to opening ones by id, whichever is handled first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened: dict[str, tuple[str, str, datetime, str | None]] = {}
        self._closed: dict[str, tuple[datetime, Any]] = {}

    def open(self, event_id: str, kind: str, name: str, at: datetime, agent: str | None) -> None:
        with self._lock:
            closed = self._closed.pop(event_id, None)
            if closed is None:
                _bounded(self._opened)[event_id] = (kind, name, at, agent)
                return
        _record(kind, name, at, *closed, agent)

    def close(self, started_id: str | None, at: datetime, error: Any) -> None:
        if not started_id:
            return
        with self._lock:
            opened = self._opened.pop(started_id, None)
            if opened is None:
                _bounded(self._closed)[started_id] = (at, error)
                return
        kind, name, start, agent = opened
        _record(kind, name, start, at, error, agent)

    def clear(self) -> None:
        with self._lock:
            self._opened.clear()
            self._closed.clear()


def _bounded(pending: dict[str, Any]) -> dict[str, Any]:
    if len(pending) >= _MAX_PENDING:
        del pending[next(iter(pending))]  # the oldest: a run that never closed
    return pending


def _record(
    kind: str, name: str, start: datetime, end: datetime, error: Any, agent: str | None
) -> None:
    try:
        seconds = max((end - start).total_seconds(), 0.0)
        if error is not None and not isinstance(error, BaseException):
            error = ERROR_TYPE
        if kind == semconv.TOOL:
            record(kind, name, seconds, error=error, agent_name=agent, tool_type=TOOL_TYPE)
        else:
            record(kind, name, seconds, error=error)
    except Exception:
        _wrappers.log_failure()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class CrewAIInstrumentor(FrameworkInstrumentor):
    """Agent, tool and crew durations from CrewAI's event bus (see the module doc)."""

    framework = "crewai"
    distribution = "crewai"
    supported = ">= 1.15, < 2"

    _handlers: list[tuple[type, Any]]
    _pairs: _Pairs | None = None

    def _patch(self, module: ModuleType) -> None:
        from crewai.events import crewai_event_bus as bus
        from crewai.events.types import agent_events as agents
        from crewai.events.types import crew_events as crews
        from crewai.events.types import tool_usage_events as tools

        try:
            from crewai.events.event_bus import is_replaying
        except ImportError:  # a version without checkpoint replay

            def is_replaying() -> bool:
                return False

        pairs = self._pairs = _Pairs()

        def opened(kind: str, name_of: Any, agent_of: Any = None) -> Any:
            def handler(source: Any, event: Any) -> None:
                if is_replaying():  # a checkpoint replays events of a past run
                    return
                try:
                    name = _text(name_of(event))
                    if name is not None:
                        agent = _text(agent_of(event)) if agent_of else None
                        pairs.open(event.event_id, kind, name, event.timestamp, agent)
                except Exception:
                    _wrappers.log_failure()

            return handler

        def closed(failed: bool) -> Any:
            def handler(source: Any, event: Any) -> None:
                if is_replaying():
                    return
                try:
                    error = (getattr(event, "error", None) or ERROR_TYPE) if failed else None
                    pairs.close(event.started_event_id, event.timestamp, error)
                except Exception:
                    _wrappers.log_failure()

            return handler

        def role(event: Any) -> Any:
            return getattr(event.agent, "role", None)

        def lite_role(event: Any) -> Any:
            info = event.agent_info
            return info.get("role") if isinstance(info, dict) else None

        self._handlers = [
            (agents.AgentExecutionStartedEvent, opened(semconv.AGENT, role)),
            (agents.AgentExecutionCompletedEvent, closed(False)),
            (agents.AgentExecutionErrorEvent, closed(True)),
            (agents.LiteAgentExecutionStartedEvent, opened(semconv.AGENT, lite_role)),
            (agents.LiteAgentExecutionCompletedEvent, closed(False)),
            (agents.LiteAgentExecutionErrorEvent, closed(True)),
            (
                tools.ToolUsageStartedEvent,
                opened(semconv.TOOL, lambda e: e.tool_name, lambda e: e.agent_role),
            ),
            (tools.ToolUsageFinishedEvent, closed(False)),
            (tools.ToolUsageErrorEvent, closed(True)),
            (crews.CrewKickoffStartedEvent, opened(semconv.WORKFLOW, lambda e: e.crew_name)),
            (crews.CrewKickoffCompletedEvent, closed(False)),
            (crews.CrewKickoffFailedEvent, closed(True)),
        ]
        for event_type, handler in self._handlers:
            bus.on(event_type)(handler)

    def _unpatch(self) -> None:
        from crewai.events import crewai_event_bus as bus

        for event_type, handler in getattr(self, "_handlers", ()):
            bus.off(event_type, handler)
        self._handlers = []
        if self._pairs is not None:
            self._pairs.clear()
