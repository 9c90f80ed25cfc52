"""The general logic of one recorded call, per call shape: the runners.

:mod:`agentstat.instrumentation._wrappers` holds the fast closures that handle a plain
success inline; everything else comes here: spans (when a tracer is set, see
:func:`set_tracer`), failures, results that complete later (a coroutine, a handle, an
async context manager or a stream returned by a plain function, see
:mod:`agentstat.instrumentation._returned`), streams, and the bookkeeping that lets a
framework integration and a dotted-path entry record one run once (:func:`tracked`).

Every runner skips all work under ``suppress_instrumentation()``, times with
``perf_counter``, returns the wrapped call's value and re-raises its exception object
unchanged, and records cancellation (``asyncio.CancelledError``, ``GeneratorExit`` on an
abandoned stream) as ``error.type="cancelled"``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import threading
import weakref
from collections.abc import Callable
from time import perf_counter
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from agentstat.instrumentation import _returned
from agentstat.instrumentation._recorder import Recorder

# opentelemetry-instrumentation's is_instrumentation_enabled() reads the context twice
# (~350 ns); one read of the current context and two dict lookups does the same job.
_SUPPRESS = _SUPPRESS_INSTRUMENTATION_KEY
_SUPPRESS_OLD = "suppress_instrumentation"


def _context_reader() -> Callable[[], Any]:
    """``otel_context.get_current``, or the ``ContextVar.get`` behind it when the
    runtime context is the default contextvars one (one C call instead of two frames).
    Read once, at import: a runtime context swapped in later (never done outside
    OpenTelemetry's own tests) would not be followed."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime).__name__ == "ContextVarsRuntimeContext" and isinstance(
        var, contextvars.ContextVar
    ):
        return var.get
    return otel_context.get_current


_current = _context_reader()


def _suppressed() -> bool:
    ctx = _current()  # usually an empty Context: falsy, and no lookups at all
    return bool(ctx) and bool(ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD))


_shape_of = _returned.SHAPES.get
UNSEEN = _returned.UNSEEN

_tracer: trace.Tracer | None = None
_NO_SPAN = (None, None)


#: ``_SLOW[by_path]``: True while the fast closures must hand every call to a runner:
#: a tracer is set (both), or a framework integration is patched (dotted paths, whose
#: calls it may claim). Each fast closure reads it from a cell of its own, ``_as_slow``,
#: which :func:`gated` registers and :func:`_refresh_gates` flips: one cell load per
#: call (a list read and index cost ~15 ns more, on a path of ~380 ns).
_SLOW = [False, False]
_gated: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_gate_lock = threading.Lock()


def _renew_gate_lock() -> None:
    global _gate_lock
    _gate_lock = threading.Lock()  # a lock another thread held at a fork stays held


os.register_at_fork(after_in_child=_renew_gate_lock)


def _set_slow(wrapper: Any, value: bool) -> None:
    index = wrapper.__code__.co_freevars.index("_as_slow")
    wrapper.__closure__[index].cell_contents = value


def gated(wrapper: Any, by_path: bool) -> Any:
    """Register a fast closure (whose body reads a free variable ``_as_slow``) so that
    its ``_as_slow`` follows the gate; returns it."""
    with _gate_lock:
        _gated[wrapper] = by_path
        _set_slow(wrapper, _SLOW[by_path])
    return wrapper


def _refresh_gates() -> None:
    with _gate_lock:
        _SLOW[False] = _tracer is not None
        _SLOW[True] = _tracer is not None or TRACKING[0] > 0
        for wrapper, by_path in list(_gated.items()):
            _set_slow(wrapper, _SLOW[by_path])


def set_tracer(tracer: trace.Tracer | None) -> None:
    """Open spans through ``tracer`` from now on (None: no spans, no cost)."""
    global _tracer
    _tracer = tracer
    _refresh_gates()


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
    try:
        shape = _shape_of(type(result), UNSEEN)
    except TypeError:  # a type that cannot be hashed: a plain value
        shape = 0
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
    first chunk. The first chunk is taken by hand (to time it); once the consumer
    resumes with ``next()``, the rest goes through ``yield from``, which forwards
    ``send``/``throw``/``close`` natively (PEP 380) at the least cost per chunk. A value
    sent, or an exception thrown, at the first chunk is forwarded by hand first.

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
                    continue
                if sent is None:
                    result = yield from gen
                    break
                try:
                    value = gen.send(sent)
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
    """The async twin of :func:`timed_stream`. Async generators cannot ``yield from``,
    so chunks come through ``async for`` (the cheapest way to pull them: ~80 ns a
    chunk) and a value sent, an exception thrown or a close is forwarded by hand
    (``asend``/``athrow``/``aclose``, PEP 525 semantics); once the inner stream ends
    there, the ``async for`` ends with it."""
    token = None
    if start is None:
        span, token = _NO_SPAN if _tracer is None else rec.start_span(_tracer, current=False)
        start = perf_counter()
    try:
        first = True
        async for value in agen:
            if first:
                first = False
                rec.first_chunk(perf_counter() - start)
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:
                    step = agen.athrow(thrown)
                else:
                    if sent is None:
                        break  # the next chunk, from the async for
                    step = agen.asend(sent)
                try:
                    value = await step
                except StopAsyncIteration:
                    break  # the stream ended: so does the async for
    except BaseException as exc:
        rec.finish(start, exc, span, token)
        raise
    rec.finish(start, None, span, token)


# ------------------------------------------------------------------------ shapes


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


# ----------------------------------------------------------------------- active runs

#: Timed runs open in this context, outermost first: framework integrations' runs
#: (:func:`agentstat.integrations.start_run`) and, while any integration is patched,
#: dotted-path calls. An entry has ``kind``, ``key``, ``name``, ``done`` and
#: ``explicit`` (True for dotted-path calls); finished entries are skipped and pruned.
ACTIVE: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
    "agentstat_active_runs", default=()
)
#: ``TRACKING[0]``: number of framework integrations patched right now (change it with
#: :func:`track`). While it is 0, dotted-path calls skip the bookkeeping entirely.
TRACKING = [0]


def track(delta: int) -> None:
    """An integration was patched (+1) or unpatched (-1)."""
    TRACKING[0] += delta
    _refresh_gates()


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
