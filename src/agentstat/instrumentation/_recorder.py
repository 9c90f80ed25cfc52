"""What a wrapper records one named agent, tool or workflow with: its :class:`Recorder`.

A recorder is made once per name, when a function is decorated or a dotted path is
patched; it validates and caps the name then, and binds the success series of its
duration metric (:meth:`agentstat._metrics.histograms.HistogramFamily.bound`), so the
per-call work of a successful call is an inline bucket update in the wrapper
(:mod:`agentstat.instrumentation._wrappers`). Failures, first chunks and spans, which
are rarer or slower anyway, go through the recorder's methods.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentstat import semconv
from agentstat._metrics.caps import CAPS
from agentstat._metrics.store import STORE

_logger = logging.getLogger(__name__)

AGENT = semconv.AGENT
TOOL = semconv.TOOL

_CANCELLATION = (asyncio.CancelledError, GeneratorExit)


def error_type(exc: BaseException | type[BaseException]) -> str:
    """``error.type`` for ``exc`` (an exception or its class): "cancelled" for
    cancellation, else the class name."""
    cls = exc if isinstance(exc, type) else type(exc)
    if issubclass(cls, _CANCELLATION):
        return semconv.ERROR_TYPE_CANCELLED
    return cls.__name__


_failure_logged = False


def log_failure() -> None:
    """Log the exception being handled, once per process: recording must never raise."""
    global _failure_logged
    if not _failure_logged:
        _failure_logged = True
        _logger.exception("agentstat: failed to record a call (reported once)")


def _tool_extra(
    kind: str, metric: str, agent_name: str | None, tool_type: str | None
) -> tuple[str, ...]:
    """Values of the tool metric's ``gen_ai.agent.name`` and ``gen_ai.tool.type``."""
    if kind != TOOL:
        if agent_name is not None or tool_type is not None:
            raise ValueError(f"agent_name and tool_type describe tools, not a {kind}")
        return ()
    values = []
    for what, value, cap in (
        ("agent_name", agent_name, CAPS.names(f"{metric}:{semconv.GEN_AI_AGENT_NAME}")),
        ("tool_type", tool_type, CAPS.names(f"{metric}:{semconv.GEN_AI_TOOL_TYPE}")),
    ):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{what} must be a non-empty string or None, not {value!r}")
        values.append(cap(value) if value else "")
    return tuple(values)


class Recorder:
    """Everything needed to record calls of one named agent, tool or workflow.

    ``agent_name`` and ``tool_type`` (tools only) fill the tool metric's
    ``gen_ai.agent.name`` and ``gen_ai.tool.type``; each is capped like names.
    """

    __slots__ = ("__weakref__", "_errors", "_extra", "_family", "_lookup", "_ok_key", "kind",
                 "metric_name", "name", "names_cap", "ok", "span_attributes", "span_name",
                 "ttfc")  # fmt: skip

    def __init__(
        self,
        kind: str,
        name: str,
        agent_name: str | None = None,
        tool_type: str | None = None,
    ) -> None:
        record = semconv.operation(kind)  # ValueError for an unknown kind
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {kind} name must be a non-empty string, not {name!r}")
        duration, ttfc = record.duration, record.time_to_first_chunk
        operation, name_attribute = record.operation_name, record.name_attribute
        self.kind = kind
        self.metric_name = duration.name
        self.names_cap = CAPS.names(duration.name)
        self.name = self.names_cap(name)
        self._extra = _tool_extra(kind, duration.name, agent_name, tool_type)
        self._family = STORE.histogram(duration)
        self._lookup = self._family.lookup
        self._ok_key = (operation, self.name, "", *self._extra)
        #: the success series, updated inline by the wrappers
        self.ok = self._family.bound(self._ok_key, self)
        #: the time-to-first-chunk series (None for workflows, which have no such metric)
        self.ttfc = STORE.histogram(ttfc).bound((operation, self.name), self) if ttfc else None
        self._errors = CAPS.error_types(duration.name)
        self.span_name = f"{operation} {self.name}"
        self.span_attributes = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            name_attribute: self.name,
        }
        attributes = (semconv.GEN_AI_AGENT_NAME, semconv.GEN_AI_TOOL_TYPE)
        for attribute, value in zip(attributes, self._extra, strict=False):
            if value:
                self.span_attributes[attribute] = value

    def finish(self, start: float, exc: BaseException | None, span: Any, token: Any) -> None:
        """Record one call that began at ``start`` (``exc``: how it failed) and end its
        span. Never raises: a failure here is logged once and the call goes on."""
        if exc is None:
            self.ok.observe(perf_counter() - start)
        else:
            self.failed(start, exc)
        if span is not None:
            self.end_span(span, token, exc)

    def failed(self, start: float, exc: BaseException) -> None:
        """Record one call that began at ``start`` and raised ``exc``. Never raises."""
        seconds = perf_counter() - start
        try:
            key = (self._ok_key[0], self.name, self._errors(error_type(exc)), *self._extra)
            (self._lookup(key) or self._family.series(key)).observe(seconds)
        except Exception:
            log_failure()

    def observe(self, seconds: float, error: str) -> None:
        """Record one call of ``seconds`` that failed with ``error.type`` ``error``
        ("" for success; capped here). Never raises."""
        try:
            if not error:
                self.ok.observe(seconds)
                return
            key = (self._ok_key[0], self.name, self._errors(error), *self._extra)
            (self._lookup(key) or self._family.series(key)).observe(seconds)
        except Exception:
            log_failure()

    def first_chunk(self, seconds: float) -> None:
        if self.ttfc is not None:  # workflows have no time-to-first-chunk metric
            self.ttfc.observe(seconds)

    # -- spans ---------------------------------------------------------------------

    def start_span(self, tracer: trace.Tracer, current: bool = True) -> tuple[Any, Any]:
        """Start the call's span; ``current`` makes it the parent of spans inside the call.

        Streams pass ``current=False``: a generator resumes in its consumer's context,
        so a context attached at its start could not be detached safely at its end.
        """
        try:
            span = tracer.start_span(
                self.span_name, kind=SpanKind.INTERNAL, attributes=self.span_attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span)) if current else None
            return span, token
        except Exception:
            log_failure()
            return None, None

    @staticmethod
    def end_span(span: Any, token: Any, exc: BaseException | type | str | None) -> None:
        if span is None:
            return
        try:
            if exc is not None:
                kind = exc if isinstance(exc, str) else error_type(exc)
                span.set_attribute(semconv.ERROR_TYPE, kind)
                if kind != semconv.ERROR_TYPE_CANCELLED:
                    span.set_status(Status(StatusCode.ERROR, kind))
            if token is not None:
                otel_context.detach(token)
            span.end()
        except Exception:
            log_failure()


class InstanceNames:
    """The recorder for a call whose name is read from its instance (``=@attribute``).

    ``attribute`` may be dotted (``=@config.name``). A missing, empty or non-string
    value falls back to ``fallback``. Names are capped as any other name; recorders are
    kept per distinct value, at most ``_MAX_KEPT`` of them (a runaway attribute costs a
    new recorder per call beyond that, never memory).
    """

    _MAX_KEPT = 1024

    __slots__ = ("_fallback", "_parts", "_recorders", "kind")

    def __init__(self, kind: str, attribute: str, fallback: str) -> None:
        self.kind = kind
        self._parts = tuple(attribute.split("."))
        self._fallback = fallback  # a name, admitted under the cap only when first used
        self._recorders: dict[str, Recorder] = {}

    def recorder(self, instance: Any) -> Recorder:
        value = instance
        try:
            for part in self._parts:
                value = getattr(value, part)
        except Exception:  # a property that raises, a missing attribute: the fallback
            value = None
        if type(value) is not str or not value:
            value = self._fallback
        found = self._recorders.get(value)
        if found is None:
            found = Recorder(self.kind, value)
            if len(self._recorders) < self._MAX_KEPT:
                self._recorders[value] = found
        return found
