"""Timing and recording around one agent or tool call: the hot path.

The **fast closures** (:func:`decorate`, and dotted paths naming a module function) are
the only frame between the caller and the wrapped function: one gate test, one
suppression check, two clock reads, and an inline update of the success series the
recorder bound when the function was wrapped (:mod:`agentstat._metrics.histograms`
says why that needs no lock under the GIL). A failure, a span, the bookkeeping while a
framework integration is patched, and results that complete later leave for the
general logic in :mod:`agentstat.instrumentation._runners`. Methods and callable
objects named by dotted path keep a wrapt proxy whose wrapper is the closure's twin;
generator functions get a :class:`~agentstat.instrumentation._proxies.StreamFunction`.

The closures are generated with the wrapped function's own parameters
(:mod:`._closures`). Measured on 2 vCPUs, CPython 3.11: ~0.33 µs added per sync call,
~0.36 µs per async call (plus ~20 ns per suspension inside it: one coroutine frame),
~0.98 µs per method call by path (wrapt's binding is ~0.55 µs of it). See
docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any

from agentstat.instrumentation import _closures, _returned
from agentstat.instrumentation._proxies import (  # noqa: F401 (re-exported)
    MARKER,
    PATH_MARKER,
    AgentstatFunctionWrapper,
    StreamFunction,
    is_wrapped,
)
from agentstat.instrumentation._recorder import (  # noqa: F401 (re-exported)
    AGENT,
    TOOL,
    InstanceNames,
    Recorder,
    error_type,
    log_failure,
)
from agentstat.instrumentation._runners import (  # noqa: F401 (re-exported)
    _SUPPRESS,
    _SUPPRESS_OLD,
    ACTIVE,
    TRACKING,
    UNSEEN,
    _current,
    _shape_of,
    _suppressed,
    call_async,
    call_sync,
    gated,
    runner_for,
    set_tracer,
    stream_async,
    stream_sync,
    timed_astream,
    timed_stream,
    track,
    tracked,
)


def _path_call_sync(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """A module function's call by dotted path, off the fast path (spans, integrations)."""
    if TRACKING[0]:
        return tracked(rec, call_sync, func, None, args, kwargs)
    return call_sync(rec, func, args, kwargs)


def _path_call_async(rec: Recorder, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    if TRACKING[0]:
        return tracked(rec, call_async, func, None, args, kwargs)
    return call_async(rec, func, args, kwargs)


#: What every generated closure reads (see :func:`_closures._cells`).
_CELLS: dict[str, Any] = {
    "suppress_keys": (_SUPPRESS, _SUPPRESS_OLD),
    "current": _current,
    "shape_of": _shape_of,
    "unseen": UNSEEN,
    "deferred": _returned.deferred,
}


def _fast(func: Callable[..., Any], rec: Recorder, by_path: bool, is_async: bool) -> Any:
    """The closure recording ``func``'s calls (see :mod:`._closures`), registered so its
    slow-path cell follows the tracer and the integrations (:func:`_runners.gated`)."""
    if is_async:
        runner = _path_call_async if by_path else call_async
    else:
        runner = _path_call_sync if by_path else call_sync
    wrapper = _closures.make(func, rec, runner, is_async, **_CELLS)
    setattr(wrapper, PATH_MARKER if by_path else MARKER, rec)
    return gated(wrapper, by_path)


def closure_for(func: Callable[..., Any], rec: Recorder, by_path: bool = False) -> Any:
    """The fast wrapper for ``func``: a closure for a plain or ``async def`` call shape,
    a :class:`StreamFunction` for a generator function; None for anything else (a
    generator-shaped callable object: a wrapt proxy's business)."""
    runner = runner_for(func)
    if runner is call_sync or runner is call_async:
        return _fast(func, rec, by_path, runner is call_async)
    if type(func) is not FunctionType:
        return None
    proxy = StreamFunction(func, rec, timed_stream if runner is stream_sync else timed_astream)
    setattr(proxy, PATH_MARKER if by_path else MARKER, rec)
    return proxy


def _method_slow(rec: Recorder, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """A method's call by dotted path, off the fast path (spans, integrations)."""
    if TRACKING[0]:
        return tracked(rec, call_sync, wrapped, instance, args, kwargs)
    return call_sync(rec, wrapped, args, kwargs)


def _method_sync(rec: Recorder) -> Callable[..., Any]:
    """The wrapt wrapper for a plain method or callable object: the closures' body
    (:mod:`._closures`) in the one frame wrapt calls, no runner frame beneath it."""
    return gated(_closures.make_method(rec, _method_slow, **_CELLS), True)


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
    """Wrap ``func`` so every call is recorded by ``rec``: the fast closure or stream
    function (:func:`closure_for`); a callable object that returns a stream gets a wrapt
    proxy (a closure would not keep ``isgeneratorfunction`` and binding at the call)."""
    fast = closure_for(func, rec)
    if fast is not None:
        return fast
    timed = timed_stream if runner_for(func) is stream_sync else timed_astream

    def stream_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kw: dict) -> Any:
        stream = wrapped(*args, **kw)
        return stream if _suppressed() else timed(rec, stream)

    return AgentstatFunctionWrapper(func, stream_wrapper)
