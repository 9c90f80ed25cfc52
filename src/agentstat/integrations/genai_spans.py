"""GenAI spans from any instrumentation into agentstat's duration histograms.

Many instrumentations already emit OpenTelemetry GenAI spans — a framework's own
(pydantic-ai's ``Agent.instrument_all()``), OpenLLMetry, OpenLIT, and others. This
span processor turns each finished span

=====================  ==========================  ==============================
``gen_ai.operation``   name attribute              recorded as
=====================  ==========================  ==============================
``invoke_agent``       ``gen_ai.agent.name``       ``gen_ai.invoke_agent.duration``
``execute_tool``       ``gen_ai.tool.name``        ``gen_ai.execute_tool.duration``
``invoke_workflow``    ``gen_ai.workflow.name``    ``gen_ai.workflow.duration``
=====================  ==========================  ==============================

into one record of the span's duration (its own start and end times). The operation
is the ``gen_ai.operation.name`` attribute (else the first word of the span name); a
span without its name attribute is left alone (a crew or task span that names no
agent, say). A tool record's ``gen_ai.agent.name`` is the span's own attribute, else
that of the nearest open ``invoke_agent`` span above it; ``gen_ai.tool.type`` is
copied when present. A failed span (status ``ERROR`` or an ``error.type`` attribute)
records its ``error.type``, else the class of its recorded exception, else ``_OTHER``
(the semantic conventions' fallback) — never the status message.

**On by default** under ``opentelemetry-instrument`` (entry point
``agentstat_genai_spans``; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_genai_spans``
keeps it off): it adds itself to the global SDK ``TracerProvider``, which
opentelemetry-instrument sets up before loading instrumentors (with agentstat's distro
the provider exports nothing; the processor only reads). A process with no GenAI spans
pays nothing but a dictionary lookup per span. In code::

    from agentstat.integrations.genai_spans import GenAISpanInstrumentor
    GenAISpanInstrumentor().instrument(tracer_provider=provider)   # after setting it up
    # or: provider.add_span_processor(GenAISpanProcessor())

**No double counts.** A span is left alone when agentstat has timed the same run
already:

- spans of agentstat's own tracer (``invoke_agent {name}`` spans made when tracing is
  on) are never counted;
- spans from a framework whose built-in agentstat integration is switched on (CrewAI,
  smolagents, LlamaIndex, pydantic-ai, OpenAI Agents, LangChain/LangGraph) are left to
  it — the framework is recognised in the span's instrumentation scope name or its
  ``gen_ai.provider.name``/``gen_ai.system`` (``opentelemetry.instrumentation.crewai``,
  ``openinference.instrumentation.llama_index``, ``pydantic-ai``, ...);
- a span that starts inside a run an agentstat integration is timing (or a dotted-path
  run while an integration is on), of the same kind and name, is left to that run.

Adding this processor does not switch agentstat's own spans on: those are made only
when the tracer provider has a processor that exports (see
``agentstat.instrumentation``), and this one only reads.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from agentstat import semconv
from agentstat._metrics import bridge
from agentstat.instrumentation import _wrappers
from agentstat.instrumentation._wrappers import ACTIVE
from agentstat.instrumentation.recording import record
from agentstat.integrations._base import FrameworkInstrumentor

__all__ = ["GenAISpanInstrumentor", "GenAISpanProcessor"]

_logger = logging.getLogger("agentstat")

#: Instrumentation scope of agentstat's own spans.
_OWN_SCOPE = "agentstat"

_KINDS = {
    semconv.OPERATION_INVOKE_AGENT: (semconv.AGENT, semconv.GEN_AI_AGENT_NAME),
    semconv.OPERATION_EXECUTE_TOOL: (semconv.TOOL, semconv.GEN_AI_TOOL_NAME),
    semconv.OPERATION_INVOKE_WORKFLOW: (semconv.WORKFLOW, semconv.GEN_AI_WORKFLOW_NAME),
}

#: A built-in integration (by its ``framework`` import name) -> the words that name its
#: framework in other instrumentations' scope names and provider attributes (compared
#: lower-case, with ``-`` and ``.`` read as ``_``).
FRAMEWORK_WORDS: dict[str, tuple[str, ...]] = {
    "crewai": ("crewai",),
    "smolagents": ("smolagents",),
    "llama_index.core": ("llama_index", "llamaindex"),
    "pydantic_ai": ("pydantic_ai",),
    "agents": ("openai_agents",),
    "langgraph.pregel": ("langgraph", "langchain"),
    "langgraph": ("langgraph", "langchain"),
    "langchain_core": ("langchain", "langgraph"),
}

_PROVIDER_ATTRIBUTES = ("gen_ai.provider.name", "gen_ai.system")
_MAX_OPEN = 10_000


def _normal(text: Any) -> str:
    return str(text).lower().replace("-", "_").replace(".", "_")


def _integrated_words() -> tuple[str, ...]:
    """Words of the frameworks whose built-in integration is patched right now."""
    words: list[str] = []
    pending = list(FrameworkInstrumentor.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__dict__.get("_patched"):
            framework = getattr(cls, "framework", "")
            words.extend(FRAMEWORK_WORDS.get(framework, (_normal(framework),)))
    return tuple(words)


def _operation(span: ReadableSpan, attributes: Any) -> str | None:
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME) if attributes is not None else None
    if isinstance(operation, str):
        return operation
    name = span.name or ""
    return name.split(" ", 1)[0] if " " in name else None


def _error_type(span: ReadableSpan, attributes: Any) -> str | None:
    declared = attributes.get(semconv.ERROR_TYPE)
    if span.status.status_code is not StatusCode.ERROR and not declared:
        return None
    if isinstance(declared, str) and declared:
        return declared
    for event in span.events or ():
        if event.name == "exception":
            value = (event.attributes or {}).get("exception.type")
            if isinstance(value, str) and value:
                return value.rsplit(".", 1)[-1]
    return semconv.OTHER


class GenAISpanProcessor(SpanProcessor):
    """Records finished GenAI spans into agentstat's histograms (see the module doc)."""

    #: Read by agentstat's instrumentor: this processor exports nothing, so it does not
    #: make agentstat's own spans worth creating.
    agentstat_reads_only = True

    def __init__(self) -> None:
        self.enabled = True
        self._lock = threading.Lock()
        # Open invoke_agent spans by span id, and the parent of each open span under one
        # (so a tool span finds its agent through intermediate spans).
        self._agents: dict[int, Span] = {}
        self._parents: dict[int, int] = {}
        self._traces: dict[int, int] = {}  # trace id -> open agent spans in it
        # Span id -> (kind, name) of agentstat runs open where it started.
        self._inside: dict[int, tuple[tuple[str, str], ...]] = {}

    # -- SpanProcessor -------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if not self.enabled:
            return
        try:
            self._started(span, parent_context)
        except Exception:
            _wrappers.log_failure()

    def on_end(self, span: ReadableSpan) -> None:
        if not self.enabled:
            return
        try:
            self._ended(span)
        except Exception:
            _wrappers.log_failure()

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- internals -----------------------------------------------------------------

    def _started(self, span: Span, parent_context: Any) -> None:
        context = span.get_span_context()
        active = ACTIVE.get()
        if active:
            runs = tuple((run.kind, run.name) for run in active if not run.done)
            if runs and len(self._inside) < _MAX_OPEN:
                self._inside[context.span_id] = runs
        agent = _operation(span, span.attributes) == semconv.OPERATION_INVOKE_AGENT
        if not agent and context.trace_id not in self._traces:
            return  # not under an open agent span: nothing to remember
        parent = span.parent
        with self._lock:
            if len(self._parents) >= _MAX_OPEN:
                return
            if parent is not None:
                self._parents[context.span_id] = parent.span_id
            if agent:
                self._agents[context.span_id] = span
                self._traces[context.trace_id] = self._traces.get(context.trace_id, 0) + 1

    def _ended(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        span_id = context.span_id
        # Single dict operations are atomic; the lock guards the read-modify-writes.
        inside = self._inside.pop(span_id, ()) if self._inside else ()
        agent_name: str | None = None
        if self._traces and context.trace_id in self._traces:
            with self._lock:
                agent_name = self._agent_above(span) if span_id in self._parents else None
                self._parents.pop(span_id, None)
                if self._agents.pop(span_id, None) is not None:
                    left = self._traces.get(context.trace_id, 1) - 1
                    if left > 0:
                        self._traces[context.trace_id] = left
                    else:
                        self._traces.pop(context.trace_id, None)
        attributes = span.attributes
        operation = _operation(span, attributes)
        found = _KINDS.get(operation) if operation else None
        if found is None or attributes is None:
            return
        kind, name_attribute = found
        name = attributes.get(name_attribute)
        if not isinstance(name, str) or not name or span.end_time is None:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name == _OWN_SCOPE:
            return
        if (kind, name) in inside or self._integrated(span, attributes):
            return
        seconds = max((span.end_time - (span.start_time or span.end_time)) / 1e9, 0.0)
        error = _error_type(span, attributes)
        if kind == semconv.TOOL:
            own = attributes.get(semconv.GEN_AI_AGENT_NAME)
            tool_type = attributes.get(semconv.GEN_AI_TOOL_TYPE)
            record(
                kind,
                name,
                seconds,
                error=error,
                agent_name=own if isinstance(own, str) and own else agent_name,
                tool_type=tool_type if isinstance(tool_type, str) and tool_type else None,
            )
        else:
            record(kind, name, seconds, error=error)

    def _agent_above(self, span: ReadableSpan) -> str | None:
        """gen_ai.agent.name of the nearest open invoke_agent span above ``span``."""
        parent = self._parents.get(span.get_span_context().span_id)
        for _ in range(64):
            if parent is None:
                return None
            agent = self._agents.get(parent)
            if agent is not None:
                name = (agent.attributes or {}).get(semconv.GEN_AI_AGENT_NAME)
                return name if isinstance(name, str) and name else None
            parent = self._parents.get(parent)
        return None

    @staticmethod
    def _integrated(span: ReadableSpan, attributes: Any) -> bool:
        words = _integrated_words()
        if not words:
            return False
        scope = span.instrumentation_scope
        sources = [_normal(scope.name)] if scope is not None else []
        sources.extend(
            _normal(attributes[key]) for key in _PROVIDER_ATTRIBUTES if key in attributes
        )
        return any(word in source for source in sources for word in words)


#: Tracer provider -> the processor added to it (a provider cannot remove processors:
#: uninstrument disables it, instrument enables it again).
_ATTACHED: weakref.WeakKeyDictionary[Any, GenAISpanProcessor] = weakref.WeakKeyDictionary()


class GenAISpanInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Adds a :class:`GenAISpanProcessor` to the tracer provider (see the module doc)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        bridge.attach(kwargs.get("meter_provider") or metrics.get_meter_provider())
        provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
        if not hasattr(provider, "add_span_processor"):
            _logger.debug(
                "agentstat: no SDK TracerProvider is set; GenAI spans are not recorded "
                "(add GenAISpanProcessor() to your provider)"
            )
            return
        processor = _ATTACHED.get(provider)
        if processor is None:
            processor = _ATTACHED[provider] = GenAISpanProcessor()
            provider.add_span_processor(processor)
        processor.enabled = True

    def _uninstrument(self, **kwargs: Any) -> None:
        for processor in list(_ATTACHED.values()):
            processor.enabled = False
