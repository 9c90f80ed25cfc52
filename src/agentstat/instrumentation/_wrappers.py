"""Timing and recording around one agent or tool call: the hot path.

One runner per call shape (plain, coroutine, generator, async generator) holds the
only copy of the timing logic; both the decorators and the wrapt patches applied by
dotted path call them. What a plain call returns decides when it ends: a coroutine,
a future-like handle, an async context manager or a stream returned by a plain
function is timed until it completes (see :mod:`agentstat.instrumentation._returned`).
A runner:

- skips all work under ``suppress_instrumentation()``;
- times with ``perf_counter`` (monotonic) and records into the pre-aggregated store,
  so the per-call cost is a dict lookup and a locked bucket increment, not an OTel SDK
  ``record`` (see :mod:`agentstat._metrics.histograms`);
- returns the wrapped call's value and re-raises its exception object unchanged (a bare
  ``raise``); failures inside agentstat are logged once, never raised;
- tells cancellation (``asyncio.CancelledError``, ``GeneratorExit`` on an abandoned
  stream) apart from failure: it is recorded with ``error.type="cancelled"``;
- opens a span only when tracing was switched on with a real tracer (see
  :func:`set_tracer`), so with no tracer provider the cost is one ``is None`` test.

Why one long module: the runners read their module's globals (the tracer, the open
runs) once per call, and keeping the recorder, the runners and the wrappers that call
them together keeps those reads plain global loads on the hot path; the returned call
shapes and the captured-function check, which are not on it, live in their own modules.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from time import perf_counter
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentstat import semconv
from agentstat._metrics.caps import CAPS
from agentstat._metrics.store import STORE
from agentstat.instrumentation import _returned

_logger = logging.getLogger(__name__)

AGENT = semconv.AGENT
TOOL = semconv.TOOL

# opentelemetry-instrumentation's is_instrumentation_enabled() reads the context twice
# (~350 ns); one read of the current context and two dict lookups does the same job.
_SUPPRESS_KEYS = (_SUPPRESS_INSTRUMENTATION_KEY, "suppress_instrumentation")
_get_current = otel_context.get_current


def _suppressed() -> bool:
    ctx = _get_current()  # usually an empty Context: falsy, and no lookups at all
    return bool(ctx) and bool(ctx.get(_SUPPRESS_KEYS[0]) or ctx.get(_SUPPRESS_KEYS[1]))


_shape_of = _returned.SHAPES.get
UNSEEN = _returned.UNSEEN

_tracer: trace.Tracer | None = None
_NO_SPAN = (None, None)


def set_tracer(tracer: trace.Tracer | None) -> None:
    """Open spans through ``tracer`` from now on (None: no spans, no cost)."""
    global _tracer
    _tracer = tracer


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

    __slots__ = ("_errors", "_extra", "_family", "_lookup", "_ok_key", "_ttfc_family",
                 "_ttfc_key", "kind", "metric_name", "name", "names_cap", "span_attributes",
                 "span_name")  # fmt: skip

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
        self._ttfc_family = STORE.histogram(ttfc) if ttfc is not None else None
        self._ttfc_key = (operation, self.name)
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
        seconds = perf_counter() - start
        try:
            if exc is None:
                key = self._ok_key
            else:
                key = (self._ok_key[0], self.name, self._errors(error_type(exc)), *self._extra)
            series = self._lookup(key) or self._family.series(key)
            series.observe(seconds)
        except Exception:
            log_failure()
        if span is not None:
            self.end_span(span, token, exc)

    def observe(self, seconds: float, error: str) -> None:
        """Record one call of ``seconds`` that failed with ``error.type`` ``error``
        ("" for success; capped here). Never raises."""
        try:
            key = (
                self._ok_key
                if not error
                else (self._ok_key[0], self.name, self._errors(error), *self._extra)
            )
            (self._lookup(key) or self._family.series(key)).observe(seconds)
        except Exception:
            log_failure()

    def first_chunk(self, seconds: float) -> None:
        if self._ttfc_family is None:  # workflows have no time-to-first-chunk metric
            return
        try:
            self._ttfc_family.series(self._ttfc_key).observe(seconds)
        except Exception:
            log_failure()

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


# --------------------------------------------------------------------------- runners


def call_sync(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    if _suppressed():
        return func(*args, **kwargs)
    span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer)
    start = perf_counter()
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    shape = _shape_of(type(result), UNSEEN)
    if shape:  # not a known plain value: maybe work that completes later
        return _returned.deferred(rec, start, span, token, result, shape)
    rec.finish(start, None, span, token)
    return result


async def call_async(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    if _suppressed():
        return await func(*args, **kwargs)
    span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer)
    start = perf_counter()
    try:
        result = await func(*args, **kwargs)
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    rec.finish(start, None, span, token)
    return result


def stream_sync(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Generator runner, run when the generator function is called: the arguments bind
    now (a bad call raises here, as it would unwrapped) and the generator returned
    times the stream."""
    gen = func(*args, **kwargs)
    if _suppressed():
        return gen
    return timed_stream(rec, gen)


def timed_stream(rec: Recorder, gen: Any, start: float | None = None, span: Any = None) -> Any:
    """Duration covers the whole stream (first ``next()`` to the end), plus time to
    first chunk. ``send``/``throw``/``close`` are forwarded by hand (PEP 380 semantics)
    rather than by ``yield from`` through a first-chunk proxy: measured, that halves the
    per-chunk cost (~35 ns) and saves ~1.4 µs per stream.

    A stream returned by a plain function passes the call's ``start`` and span."""
    token = None
    if start is None:
        span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer, current=False)
        start = perf_counter()
    try:
        try:
            value = next(gen)
        except StopIteration as stop:
            result = stop.value
        else:
            rec.first_chunk(perf_counter() - start)
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as thrown:
                    try:
                        value = gen.throw(thrown)
                    except StopIteration as stop:
                        result = stop.value
                        break
                else:
                    try:
                        value = next(gen) if sent is None else gen.send(sent)
                    except StopIteration as stop:
                        result = stop.value
                        break
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    rec.finish(start, None, span, token)
    return result


def stream_async(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Async-generator runner, run at call time like :func:`stream_sync`."""
    agen = func(*args, **kwargs)
    if _suppressed():
        return agen
    return timed_astream(rec, agen)


async def timed_astream(
    rec: Recorder, agen: Any, start: float | None = None, span: Any = None
) -> Any:
    """The async twin of :func:`timed_stream`; async generators cannot ``yield from``,
    so ``asend``/``athrow``/``aclose`` are forwarded by hand (PEP 525 semantics)."""
    token = None
    if start is None:
        span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer, current=False)
        start = perf_counter()
    try:
        try:
            value = await agen.__anext__()
        except StopAsyncIteration:
            pass
        else:
            rec.first_chunk(perf_counter() - start)
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:
                    try:
                        value = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        break
                else:
                    try:
                        value = await agen.asend(sent)
                    except StopAsyncIteration:
                        break
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    rec.finish(start, None, span, token)


# ------------------------------------------------------------------------ wrappers


def _call_target(func: Any) -> Any:
    """What to inspect for ``func``'s shape: a callable object's ``__call__``."""
    if isinstance(func, FunctionType | MethodType | BuiltinFunctionType | functools.partial):
        return func
    if isinstance(func, staticmethod | classmethod):
        return func.__func__
    if isinstance(func, type) or not callable(func):
        return func
    return type(func).__call__


def runner_for(func: Callable[..., Any]) -> Callable[..., Any]:
    """The runner matching ``func``'s call shape (an object with ``async def __call__``
    is a coroutine function here)."""
    target = _call_target(func)
    if inspect.isasyncgenfunction(target):
        return stream_async
    if inspect.iscoroutinefunction(target):
        return call_async
    if inspect.isgeneratorfunction(target):
        return stream_sync
    return call_sync


class AgentstatBoundFunctionWrapper(wrapt.BoundFunctionWrapper):
    """A method bound from an agentstat proxy; pickles as ``getattr(owner, name)``,
    as a bound method does."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        owner = self._self_instance
        if owner is None:
            owner = self._self_owner
        return getattr, (owner, self.__name__)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class AgentstatFunctionWrapper(wrapt.FunctionWrapper):
    """A wrapt proxy made by agentstat, so a second target for the same callable is a no-op.

    It pickles by reference, as the function it wraps does (``module.qualname``, found
    again on unpickling: in a process where agentstat is active, the wrapped one), and
    copies as itself; a plain wrapt proxy refuses both.
    """

    __bound_function_wrapper__ = AgentstatBoundFunctionWrapper

    def __reduce_ex__(self, protocol: Any) -> Any:
        wrapped = self.__wrapped__
        if isinstance(wrapped, FunctionType | BuiltinFunctionType | staticmethod | classmethod):
            return self.__qualname__  # a global name, checked by pickle to be this object
        return wrapped.__reduce_ex__(protocol)  # a callable object pickles as it would bare

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


#: Set on agentstat's own closures, for the same purpose.
MARKER = "__agentstat_recorder__"


def is_wrapped(value: Any) -> bool:
    """True if ``value`` is already recording through agentstat (decorator or by path)."""
    if issubclass(type(value), AgentstatFunctionWrapper):
        return True
    try:
        return isinstance(value, FunctionType) and MARKER in value.__dict__
    except Exception:
        return False


# ------------------------------------------------------------------ names from instances


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


# ----------------------------------------------------------------------- active runs

#: Timed runs open in this context, outermost first: framework integrations' runs
#: (:func:`agentstat.integrations.start_run`) and, while any integration is patched,
#: dotted-path calls. An entry has ``kind``, ``key``, ``name``, ``done`` and
#: ``explicit`` (True for dotted-path calls); finished entries are skipped and pruned.
ACTIVE: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
    "agentstat_active_runs", default=()
)
#: ``TRACKING[0]``: number of framework integrations patched right now. While it is 0,
#: dotted-path calls skip the bookkeeping entirely (one list read per call).
TRACKING = [0]


class PathRun:
    """A dotted-path call in flight, visible to integrations (see :func:`tracked`)."""

    __slots__ = ("done", "key", "kind", "name")
    explicit = True

    def __init__(self, kind: str, key: Any, name: str) -> None:
        self.kind, self.key, self.name, self.done = kind, key, name, False


def tracked(
    rec: Recorder,
    runner: Callable[..., Any],
    wrapped: Any,
    instance: Any,
    args: tuple,
    kwargs: dict,
) -> Any:
    """A dotted-path call while an integration is patched: recorded once with it.

    The key of the call is its instance (the agent or graph object; the function for a
    module-level target), as integrations key their runs. If an integration's run of
    the same kind and key is open, that run is the one recorded and takes this entry's
    name (the user's explicit name wins) and the call goes through untimed; otherwise
    the call is open for the integration to see while it runs, and recorded here.
    Streams and returned handles are not registered (their work runs after this call
    returns, in the consumer's context); an integration inside them records too.
    """
    key = instance if instance is not None else wrapped
    active = ACTIVE.get()
    for entry in reversed(active):
        if entry.key is key and entry.kind == rec.kind and not entry.done and not entry.explicit:
            entry.name = rec.name
            return wrapped(*args, **kwargs)
    if runner is call_async:
        return _tracked_async(rec, key, wrapped, args, kwargs)
    if runner is not call_sync:
        return runner(rec, wrapped, args, kwargs)
    mark = PathRun(rec.kind, key, rec.name)
    token = ACTIVE.set((*active, mark))
    try:
        return call_sync(rec, wrapped, args, kwargs)
    finally:
        mark.done = True
        ACTIVE.reset(token)


async def _tracked_async(rec: Recorder, key: Any, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    """:func:`call_async` with the call open in ``ACTIVE`` while it runs (one coroutine
    instead of two: ~1 µs less than awaiting ``call_async``)."""
    if _suppressed():
        return await wrapped(*args, **kwargs)
    mark = PathRun(rec.kind, key, rec.name)
    active = ACTIVE.set((*ACTIVE.get(), mark))
    span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer)
    start = perf_counter()
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    finally:
        mark.done = True
        ACTIVE.reset(active)
    rec.finish(start, None, span, token)
    return result


def wrapt_wrapper(
    rec: Recorder | None, func: Callable[..., Any], names: InstanceNames | None = None
) -> Callable[..., Any]:
    """A ``wrapt`` wrapper function ``(wrapped, instance, args, kwargs)`` for ``func``,
    recording through ``rec``, or through the recorder ``names`` picks from the instance
    (the callable object itself for a module-level callable object)."""
    runner = runner_for(func)
    tracking = TRACKING

    if names is None:

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            if tracking[0]:
                return tracked(rec, runner, wrapped, instance, args, kwargs)  # type: ignore[arg-type]
            return runner(rec, wrapped, args, kwargs)

        return wrapper

    def named_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        recorder = names.recorder(wrapped if instance is None else instance)
        if tracking[0]:
            return tracked(recorder, runner, wrapped, instance, args, kwargs)
        return runner(recorder, wrapped, args, kwargs)

    return named_wrapper


def decorate(func: Callable[..., Any], rec: Recorder) -> Callable[..., Any]:
    """Wrap ``func`` so every call is recorded by ``rec``.

    Plain and ``async def`` functions get a closure (about 0.6 µs cheaper per call than
    a wrapt proxy). Generators and async generators get a wrapt ``FunctionWrapper``
    around the runner, which keeps ``isgeneratorfunction``/``isasyncgenfunction`` true:
    a generator closure delegating to the runner would cost ~1.4 µs more per stream.
    """
    runner = runner_for(func)
    if runner is call_sync:

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            return call_sync(rec, func, args, kwargs)

        setattr(sync_wrapper, MARKER, rec)
        return sync_wrapper
    if runner is call_async:

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await call_async(rec, func, args, kwargs)

        setattr(async_wrapper, MARKER, rec)
        return async_wrapper

    def stream_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kw: dict) -> Any:
        return runner(rec, wrapped, args, kw)

    return AgentstatFunctionWrapper(func, stream_wrapper)
