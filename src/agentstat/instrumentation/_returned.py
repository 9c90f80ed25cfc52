"""Calls whose work outlives the call: timed until what they return completes.

A plain function may hand its real work back to the caller: a coroutine or another
awaitable (``def run(): return self._run()``), a handle completed later (an
``asyncio.Future``/``Task`` or ``concurrent.futures.Future``, or a subclass such as
LlamaIndex's workflow handler), an async context manager whose ``async with`` block is
the run (pydantic-ai's ``agent.run_stream()``), or a generator / async generator
(smolagents' ``run(stream=True)``). Timing the call alone would record ~0 s and count
a later failure as a success, so :func:`call_sync` looks at the type of what came back
and hands the recording to it. Each shape is timed from the call to its real
completion, with the outcome it really had:

=====================  ======================================  =====================
returned               completion                              ``cancelled`` when
=====================  ======================================  =====================
coroutine / awaitable  the ``await`` returns or raises         the await is cancelled
handle (future)        its done-callback runs                  it is cancelled, or is
                                                               garbage-collected
                                                               before it completes
async context manager  ``__aexit__`` returns (a suppressed     the block is cancelled
                       exception counts as success)
(async) generator      exhausted, failed or closed             the consumer abandons it
=====================  ======================================  =====================

A coroutine that is never awaited never ran and records nothing. The caller gets the
same handle object back (only a callback is added), a coroutine for a coroutine, and a
transparent ``wrapt.ObjectProxy`` for other awaitables and context managers (so
``type(result)`` is the proxy's; ``isinstance`` and every attribute are the object's).
Such a proxy dropped without ever being awaited or entered — an object that merely has
``__aenter__`` or ``__await__``, used through its other methods — records the call as a
success lasting until it returned.

The type check costs one dict lookup per call (types are classified once and cached),
so a plain sync call pays ~20 ns for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
import weakref
from time import perf_counter
from typing import Any

import wrapt
from opentelemetry import context as otel_context

from agentstat.instrumentation._recorder import Recorder, log_failure

PLAIN = 0
COROUTINE = 1
HANDLE = 2
AWAITABLE = 3
ASYNC_CONTEXT = 4
AWAITABLE_CONTEXT = 5
GENERATOR = 6
ASYNC_GENERATOR = 7
#: ``SHAPES.get(type(result), UNSEEN)`` is truthy for anything but a known plain type.
UNSEEN = -1

#: Result type -> shape, filled as types are met; bounded (past the bound a type is
#: classified on every call instead of cached).
SHAPES: dict[type, int] = dict.fromkeys(
    (type(None), bool, int, float, str, bytes, list, tuple, dict, set), PLAIN
)
_MAX_TYPES = 4096
_HANDLE_METHODS = ("add_done_callback", "done", "cancelled")


def classify(tp: type) -> int:
    """The shape of results of type ``tp`` (looked up on the type, as Python does)."""
    if issubclass(tp, types.CoroutineType):
        return COROUTINE
    if issubclass(tp, types.GeneratorType):
        return GENERATOR
    if issubclass(tp, types.AsyncGeneratorType):
        return ASYNC_GENERATOR
    if issubclass(tp, wrapt.ObjectProxy) and not issubclass(tp, TimedAsyncContext | TimedAwaitable):
        return PLAIN  # defines every special method, so its class cannot tell
    if tp.__module__ == "unittest.mock":
        return PLAIN  # a MagicMock's class has every async method: a test's plain value
    if all(callable(getattr(tp, name, None)) for name in _HANDLE_METHODS):
        return HANDLE
    context = hasattr(tp, "__aenter__") and hasattr(tp, "__aexit__")
    awaitable = hasattr(tp, "__await__")
    if context:
        return AWAITABLE_CONTEXT if awaitable else ASYNC_CONTEXT
    return AWAITABLE if awaitable else PLAIN


class Pending:
    """One call in flight after its function returned; finishes exactly once."""

    __slots__ = ("done", "rec", "ref", "span", "start")

    def __init__(self, rec: Recorder, start: float, span: Any) -> None:
        self.rec, self.start, self.span = rec, start, span
        self.done = False
        self.ref: Any = None

    def finish(self, exc: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if self.ref is not None:
            _LIVE_HANDLES.discard(self.ref)
        self.rec.finish(self.start, exc, self.span, None)


#: Weak references to handles in flight: kept alive here so that their callback runs
#: when a handle is collected before it completes.
_LIVE_HANDLES: set[weakref.ref] = set()
_CANCELLED = asyncio.CancelledError()
_MISSING: Any = object()


def deferred(rec: Recorder, start: float, span: Any, token: Any, result: Any, shape: int) -> Any:
    """What the caller of a call that returned ``result`` gets back; records it when it
    completes. ``shape`` may be :data:`UNSEEN` (classified and cached here). Never
    raises: if anything here fails, the call is recorded as it returned and ``result``
    goes back untouched."""
    if token is not None:  # the span may stay open, but the caller's context is restored
        try:
            otel_context.detach(token)
        except Exception:
            log_failure()
    try:
        return _deferred(rec, start, span, result, shape)
    except Exception:
        log_failure()
        rec.finish(start, None, span, None)
        return result


def _deferred(rec: Recorder, start: float, span: Any, result: Any, shape: int) -> Any:
    if shape == UNSEEN:
        tp = type(result)
        shape = classify(tp)
        if len(SHAPES) < _MAX_TYPES:
            SHAPES[tp] = shape
        if shape == PLAIN:
            rec.finish(start, None, span, None)
            return result
    if shape == GENERATOR:
        return _runners.timed_stream(rec, result, start, span)
    if shape == ASYNC_GENERATOR:
        return _runners.timed_astream(rec, result, start, span)
    pending = Pending(rec, start, span)
    if shape == COROUTINE:
        return _await(result, pending)
    if shape == HANDLE:
        return _watch(result, pending)
    proxy_type = (
        TimedAwaitable
        if shape == AWAITABLE
        else TimedAsyncContext
        if shape == ASYNC_CONTEXT
        else TimedAwaitableContext
    )
    proxy = proxy_type(result, pending)
    _record_if_unused(proxy, pending)
    return proxy


def _record_if_unused(proxy: Any, pending: Pending) -> None:
    """A proxy dropped without being awaited or entered (a session or client object the
    caller only used otherwise) records the call as it returned: a success lasting until
    the return, never a lost call."""
    returned_at = perf_counter()

    def unused() -> None:
        if not pending.done:  # shift the start so the duration ends at the return
            pending.start += perf_counter() - returned_at
            pending.finish(None)

    with contextlib.suppress(TypeError):  # not weakly referenceable: recorded if used
        weakref.finalize(proxy, unused)


async def _await(awaitable: Any, pending: Pending) -> Any:
    try:
        result = await awaitable
    except BaseException as exc:
        pending.finish(exc)
        raise
    pending.finish(None)
    return result


def _watch(handle: Any, pending: Pending) -> Any:
    try:
        pending.ref = weakref.ref(handle, functools.partial(_collected, pending))
        _LIVE_HANDLES.add(pending.ref)
    except TypeError:  # no weak references to this type: completion is still recorded
        pending.ref = None
    try:
        handle.add_done_callback(functools.partial(_done, pending))
    except Exception:
        pending.finish(None)  # cannot watch it: record the call as it returned
        log_failure()
    return handle


def _done(pending: Pending, handle: Any) -> None:
    exc: BaseException | None
    try:
        if handle.cancelled():
            exc = _CANCELLED
        else:
            # ``_exception`` (asyncio and concurrent.futures both have it) does not mark
            # the exception as retrieved, so asyncio still reports one nobody awaited.
            exc = getattr(handle, "_exception", _MISSING)
            if exc is _MISSING:
                exc = handle.exception()
    except BaseException as failure:  # a handle whose exception() itself raises
        exc = failure
    pending.finish(exc)


def _collected(pending: Pending, ref: Any) -> None:
    pending.finish(_CANCELLED)  # dropped before it completed: abandoned


class TimedAwaitable(wrapt.ObjectProxy):  # type: ignore[misc]
    """An awaitable that is not a coroutine, timed until the await completes."""

    def __init__(self, wrapped: Any, pending: Pending) -> None:
        super().__init__(wrapped)
        self._self_pending = pending

    def __await__(self) -> Any:
        return _await(self.__wrapped__, self._self_pending).__await__()


class TimedAsyncContext(wrapt.ObjectProxy):  # type: ignore[misc]
    """An async context manager; the run lasts until ``__aexit__`` returns."""

    def __init__(self, wrapped: Any, pending: Pending) -> None:
        super().__init__(wrapped)
        self._self_pending = pending

    async def __aenter__(self) -> Any:
        try:
            return await self.__wrapped__.__aenter__()
        except BaseException as exc:
            self._self_pending.finish(exc)
            raise

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            suppressed = await self.__wrapped__.__aexit__(exc_type, exc, tb)
        except BaseException as failure:
            self._self_pending.finish(failure)
            raise
        if exc_type is None or suppressed:
            self._self_pending.finish(None)
        else:
            self._self_pending.finish(exc if exc is not None else exc_type)
        return suppressed


class TimedAwaitableContext(TimedAsyncContext, TimedAwaitable):
    """Both (aiohttp-style request objects): whichever way it is used is timed."""


# At the end: _runners imports this module first and is read only at call time here.
from agentstat.instrumentation import _runners  # noqa: E402
