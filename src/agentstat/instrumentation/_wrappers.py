"""Timing and recording around one agent or tool call: the hot path.

Two layers. The **fast closures** (:func:`decorate`, and dotted paths naming a plain
module function) are the only frame between the caller and the wrapped function: one
suppression check, two clock reads, and an inline update of the success series the
recorder bound when the function was wrapped (:mod:`agentstat._metrics.histograms`
says why that needs no lock). A failure, a span, the bookkeeping while a framework
integration is patched, and results that complete later (a coroutine, a handle, an
async context manager or a stream returned by a plain function, see
:mod:`agentstat.instrumentation._returned`) leave the closure for the **runners**, one
per call shape, which hold the general logic. Methods and callable objects named by
dotted path keep a ``wrapt`` proxy (descriptor binding, ``=@attribute`` names) whose
wrapper function is a runner's twin.

Every path:

- skips all work under ``suppress_instrumentation()``;
- times with ``perf_counter`` (monotonic);
- returns the wrapped call's value and re-raises its exception object unchanged (a bare
  ``raise``); failures inside agentstat are logged once, never raised;
- tells cancellation (``asyncio.CancelledError``, ``GeneratorExit`` on an abandoned
  stream) apart from failure: it is recorded with ``error.type="cancelled"``;
- opens a span only when tracing was switched on with a real tracer (see
  :func:`set_tracer`), so with no tracer provider the cost is one ``is None`` test.

Why one module: the closures and runners read its globals (the tracer, the integration
count) on every call as plain global loads; the recorder (:mod:`._recorder`), the
returned shapes and the captured-function check live in their own modules.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from agentstat.instrumentation import _returned
from agentstat.instrumentation._recorder import (  # noqa: F401 (re-exported)
    AGENT,
    TOOL,
    InstanceNames,
    Recorder,
    error_type,
    log_failure,
)

# opentelemetry-instrumentation's is_instrumentation_enabled() reads the context twice
# (~350 ns); one read of the current context and two dict lookups does the same job.
_SUPPRESS = _SUPPRESS_INSTRUMENTATION_KEY
_SUPPRESS_OLD = "suppress_instrumentation"


def _context_reader() -> Callable[[], Any]:
    """``otel_context.get_current``, or the ``ContextVar.get`` behind it when the
    runtime context is the default contextvars one (one C call instead of two frames)."""
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


#: ``_SLOW[by_path][0]``: True while the fast closures must hand every call to a
#: runner: a tracer is set (both), or a framework integration is patched (dotted
#: paths, whose calls it may claim). One list read per call instead of two tests.
_SLOW = ([False], [False])


def _refresh_gates() -> None:
    _SLOW[False][0] = _tracer is not None
    _SLOW[True][0] = _tracer is not None or TRACKING[0] > 0


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
            asend = agen.asend
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
                        value = await asend(sent)
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


def _path_call_sync(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """A module function's call by dotted path, off the fast path (spans, integrations)."""
    if TRACKING[0]:
        return tracked(rec, call_sync, func, None, args, kwargs)
    return call_sync(rec, func, args, kwargs)


def _path_call_async(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    if TRACKING[0]:
        return tracked(rec, call_async, func, None, args, kwargs)
    return call_async(rec, func, args, kwargs)


def _fast_sync(func: Callable[..., Any], rec: Recorder, by_path: bool) -> Callable[..., Any]:
    """The closure recording a plain function's calls: the whole per-call cost.

    The success path updates the recorder's bound series inline (what
    ``HistogramSeries.observe`` does, lock-free under the GIL; a locked series, on a
    free-threaded build, goes through ``observe``). Anything else leaves for a runner.
    """
    ok = rec.ok
    bounds, counts, locked = ok.bounds, ok.counts, ok.lock is not None
    slow, gate = (_path_call_sync if by_path else call_sync), _SLOW[by_path]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if gate[0]:
            return slow(rec, func, args, kwargs)
        ctx = _current()
        if ctx and (ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD)):
            return func(*args, **kwargs)
        start = perf_counter()
        try:
            result = func(*args, **kwargs) if kwargs else func(*args)  # 13 ns less
        except BaseException as exc:
            rec.failed(start, exc)
            raise
        seconds = perf_counter() - start
        if _shape_of(type(result), UNSEEN):  # not a plain value: work that ends later?
            shape = _shape_of(type(result), UNSEEN)
            return _returned.deferred(rec, start, None, None, result, shape)
        if locked:
            ok.observe(seconds)
        else:
            counts[bisect_left(bounds, seconds)] += 1
            ok.sum += seconds
            if seconds < ok.min:
                ok.min = seconds
            if seconds > ok.max:
                ok.max = seconds
        return result

    setattr(wrapper, MARKER, rec)
    return wrapper


def _fast_async(func: Callable[..., Any], rec: Recorder, by_path: bool) -> Callable[..., Any]:
    """The ``async def`` twin of :func:`_fast_sync`: one coroutine, so each suspension
    inside the call passes one frame of agentstat's, not two."""
    ok = rec.ok
    bounds, counts, locked = ok.bounds, ok.counts, ok.lock is not None
    slow, gate = (_path_call_async if by_path else call_async), _SLOW[by_path]

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if gate[0]:
            return await slow(rec, func, args, kwargs)
        ctx = _current()
        if ctx and (ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD)):
            return await func(*args, **kwargs)
        start = perf_counter()
        try:
            result = await (func(*args, **kwargs) if kwargs else func(*args))
        except BaseException as exc:
            rec.failed(start, exc)
            raise
        seconds = perf_counter() - start
        if locked:
            ok.observe(seconds)
        else:
            counts[bisect_left(bounds, seconds)] += 1
            ok.sum += seconds
            if seconds < ok.min:
                ok.min = seconds
            if seconds > ok.max:
                ok.max = seconds
        return result

    setattr(wrapper, MARKER, rec)
    return wrapper


def closure_for(func: Callable[..., Any], rec: Recorder, by_path: bool = False) -> Any:
    """The fast closure for a plain or ``async def`` function, or None for other shapes
    (generators keep a wrapt proxy: see :func:`decorate`)."""
    runner = runner_for(func)
    if runner is call_sync:
        return _fast_sync(func, rec, by_path)
    if runner is call_async:
        return _fast_async(func, rec, by_path)
    return None


def _method_sync(rec: Recorder) -> Callable[..., Any]:
    """The wrapt wrapper for a plain method or callable object: :func:`_fast_sync`'s
    body in the one frame wrapt calls (no runner frame beneath it)."""
    ok = rec.ok
    bounds, counts, locked = ok.bounds, ok.counts, ok.lock is not None
    gate = _SLOW[True]

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if gate[0]:
            if TRACKING[0]:
                return tracked(rec, call_sync, wrapped, instance, args, kwargs)
            return call_sync(rec, wrapped, args, kwargs)
        ctx = _current()
        if ctx and (ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD)):
            return wrapped(*args, **kwargs)
        start = perf_counter()
        try:
            result = wrapped(*args, **kwargs) if kwargs else wrapped(*args)
        except BaseException as exc:
            rec.failed(start, exc)
            raise
        seconds = perf_counter() - start
        if _shape_of(type(result), UNSEEN):  # not a plain value: work that ends later?
            shape = _shape_of(type(result), UNSEEN)
            return _returned.deferred(rec, start, None, None, result, shape)
        if locked:
            ok.observe(seconds)
        else:
            counts[bisect_left(bounds, seconds)] += 1
            ok.sum += seconds
            if seconds < ok.min:
                ok.min = seconds
            if seconds > ok.max:
                ok.max = seconds
        return result

    return wrapper


def wrapt_wrapper(
    rec: Recorder | None, func: Callable[..., Any], names: InstanceNames | None = None
) -> Callable[..., Any]:
    """A ``wrapt`` wrapper function ``(wrapped, instance, args, kwargs)`` for ``func``,
    recording through ``rec``, or through the recorder ``names`` picks from the instance
    (the callable object itself for a module-level callable object)."""
    runner = runner_for(func)
    tracking = TRACKING

    if names is None:
        assert rec is not None
        if runner is call_sync:
            return _method_sync(rec)

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            if tracking[0]:
                return tracked(rec, runner, wrapped, instance, args, kwargs)
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

    Plain and ``async def`` functions get the fast closure. Generators and async
    generators get a wrapt ``FunctionWrapper``, which keeps
    ``isgeneratorfunction``/``isasyncgenfunction`` true and still binds the arguments
    at the call (a generator closure would defer a bad call's ``TypeError`` to the
    first ``next()``).
    """
    closure = closure_for(func, rec)
    if closure is not None:
        return closure
    timed = timed_stream if runner_for(func) is stream_sync else timed_astream

    def stream_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kw: dict) -> Any:
        stream = wrapped(*args, **kw)
        ctx = _current()
        if ctx and (ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD)):
            return stream
        return timed(rec, stream)

    return AgentstatFunctionWrapper(func, stream_wrapper)
