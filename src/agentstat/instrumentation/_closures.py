"""The fast closures, written with each wrapped function's own parameters.

Why generated: a closure taking ``(*args, **kwargs)`` builds a tuple and a dict on every
call and unpacks them again, ~45 ns of a ~380 ns call. One with the function's own
parameters (defaults, positional-only, keyword-only, ``*args``, ``**kwargs`` included)
passes them straight through; it also makes ``inspect.getfullargspec`` and
``__code__`` describe the function's parameters. (The ``decorator`` and ``makefun``
libraries generate such signatures too, but call a second function with ``*args,
**kwargs`` from them: the frame and the packing this avoids.) There is one body,
:data:`_BODY`, for sync and ``async`` closures and for the wrapper wrapt calls for a
method (:func:`make_method`); a callable that is not a plain function, or whose
parameter names start with the body's reserved prefix ``_as_``, gets the same body
with ``(*args, **kwargs)``.

The body reads only its own cells (no globals, no builtins by name), so the function
can take the wrapped function's module globals: what reads ``__globals__`` to resolve
string annotations (FastAPI, pydantic) resolves them as for the wrapped function. Its
one mutable cell, ``_as_slow``, is flipped by :func:`agentstat.instrumentation._runners.gated`.
Generated sources are registered with :mod:`linecache`, so tracebacks show their lines.
"""

from __future__ import annotations

import functools
import linecache
from bisect import bisect_left
from collections.abc import Callable
from inspect import CO_VARARGS, CO_VARKEYWORDS
from time import perf_counter
from types import FunctionType
from typing import Any, NamedTuple

_PREFIX = "_as_"

#: The success path records inline (what ``HistogramSeries.observe`` does: lock-free
#: under the GIL, see agentstat._metrics.histograms); a locked series (free-threaded
#: builds) goes through ``observe``; anything else leaves for the runner.
_BODY = """\
def _as_factory(_as_func, _as_rec, _as_runner, _as_current, _as_suppress, _as_suppress_old,
                _as_clock, _as_bucket, _as_shape_of, _as_unseen, _as_deferred, _as_type,
                _as_BaseException, _as_TypeError):
    _as_ok = _as_rec.ok
    _as_bounds, _as_counts = _as_ok.bounds, _as_ok.counts
    _as_locked = _as_ok.lock is not None
    _as_slow = False
    # Read only off the success path: one cell instead of seven (each cell costs ~1 ns
    # a call to copy into the frame).
    _as_rare = (_as_rec, _as_runner, _as_suppress, _as_suppress_old, _as_deferred,
                _as_BaseException, _as_TypeError)

    {async_}def _as_wrapper({params}):
        if _as_slow:  # a tracer, or integrations watching dotted paths
            return {await_}_as_rare[1](_as_rare[0], {slow_args})
        _as_ctx = _as_current()
        if _as_ctx and (_as_ctx.get(_as_rare[2]) or _as_ctx.get(_as_rare[3])):
            return {await_}{invoke}
        _as_start = _as_clock()
        try:
            _as_result = {await_}{invoke}
        except _as_rare[5] as _as_exc:
            _as_rare[0].failed(_as_start, _as_exc)
            raise
        _as_seconds = _as_clock() - _as_start
{shape_check}        if _as_locked:
            _as_ok.observe(_as_seconds)
        else:
            _as_counts[_as_bucket(_as_bounds, _as_seconds)] += 1
            _as_ok.sum += _as_seconds
            if _as_seconds < _as_ok.min:
                _as_ok.min = _as_seconds
            if _as_seconds > _as_ok.max:
                _as_ok.max = _as_seconds
        return _as_result

    return _as_wrapper
"""

#: A plain call may hand back work that completes later (a coroutine, a handle, an
#: async context manager, a stream): then the recording waits for it.
_SHAPE_CHECK = """\
        try:
            if _as_shape_of(_as_type(_as_result), _as_unseen):
                _as_shape = _as_shape_of(_as_type(_as_result), _as_unseen)
                return _as_rare[4](_as_rare[0], _as_start, None, None, _as_result, _as_shape)
        except _as_rare[6]:  # a type that cannot be hashed (or its metaclass): plain
            pass
"""


class _Signature(NamedTuple):
    """A parameter list, the call passing those parameters on, and the arguments that
    hand the same call to the runner."""

    params: str
    invoke: str
    slow_args: str


_VARIADIC = "*_as_args, **_as_kwargs"
_GENERIC = _Signature(_VARIADIC, f"_as_func({_VARIADIC})", "_as_func, _as_args, _as_kwargs")
#: The wrapper wrapt calls for a method: the call is the bound method wrapt hands in,
#: and the runner gets the instance too (integrations key their runs by it).
_METHOD = _Signature(
    "wrapped, instance, args, kwargs",
    "(wrapped(*args, **kwargs) if kwargs else wrapped(*args))",  # 13 ns less without
    "wrapped, instance, args, kwargs",
)


def _signature(func: Any) -> _Signature:
    """``func``'s own parameters, or the generic ``(*args, **kwargs)``."""
    if type(func) is not FunctionType:
        return _GENERIC
    code = func.__code__
    names = code.co_varnames
    npos, nargs, nkw = code.co_posonlyargcount, code.co_argcount, code.co_kwonlyargcount
    positional, kwonly = names[:nargs], names[nargs : nargs + nkw]
    index = nargs + nkw
    varargs = varkw = None
    if code.co_flags & CO_VARARGS:
        varargs, index = names[index], index + 1
    if code.co_flags & CO_VARKEYWORDS:
        varkw = names[index]
    every = [*positional, *kwonly, *(n for n in (varargs, varkw) if n)]
    if any(n.startswith(_PREFIX) or not n.isidentifier() for n in every):
        return _GENERIC
    params = list(positional[:npos]) + (["/"] if npos else []) + list(positional[npos:])
    params += [f"*{varargs}"] if varargs else (["*"] if kwonly else [])
    params += list(kwonly) + ([f"**{varkw}"] if varkw else [])
    call = [*positional, *([f"*{varargs}"] if varargs else []), *(f"{k}={k}" for k in kwonly)]
    call += [f"**{varkw}"] if varkw else []
    items = [*positional, *([f"*{varargs}"] if varargs else [])]
    args_tuple = f"({', '.join(items)},)" if items else "()"
    kwargs = [f"{k!r}: {k}" for k in kwonly] + ([f"**{varkw}"] if varkw else [])
    slow_args = f"_as_func, {args_tuple}, {{{', '.join(kwargs)}}}"
    return _Signature(", ".join(params), f"_as_func({', '.join(call)})", slow_args)


def _cells(
    func: Any,
    rec: Any,
    runner: Callable[..., Any],
    *,
    suppress_keys: tuple[str, str],
    current: Callable[[], Any],
    shape_of: Callable[..., int],
    unseen: int,
    deferred: Callable[..., Any],
) -> tuple[Any, ...]:
    """The factory's arguments, in its order."""
    return (func, rec, runner, current, *suppress_keys, perf_counter, bisect_left, shape_of,
            unseen, deferred, type, BaseException, TypeError)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _factory(signature: _Signature, is_async: bool) -> Any:
    """The factory of closures with ``signature``: compiled once per parameter list
    (compiling is ~0.4 ms; a module's functions often share one), registered with
    :mod:`linecache` for tracebacks."""
    source = _BODY.format(
        async_="async " if is_async else "",
        await_="await " if is_async else "",
        params=signature.params,
        invoke=signature.invoke,
        slow_args=signature.slow_args,
        shape_check="" if is_async else _SHAPE_CHECK,
    )
    filename = f"<agentstat closure {abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)  # our template, the function's names
    return namespace["_as_factory"]


def make(
    func: Callable[..., Any], rec: Any, runner: Callable[..., Any], is_async: bool, **cells: Any
) -> Any:
    """The closure recording ``func``'s calls through ``rec`` (``runner`` takes a call
    while the closure's ``_as_slow`` cell is set), with ``func``'s parameters.
    ``cells``: what the body reads besides (see :func:`_cells`)."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = "wrapper"
    arguments = _cells(func, rec, runner, **cells)
    try:
        signature = _signature(func)
        factory = _factory(signature, is_async)
    except Exception:  # a signature this does not foresee: the generic parameters
        signature = _GENERIC
        factory = _factory(signature, is_async)
    wrapper = factory(*arguments)
    # The function's name in tracebacks, and (for a function) its module's globals.
    code = wrapper.__code__.replace(co_name=name, co_qualname=name)
    is_function = type(func) is FunctionType
    wrapper = FunctionType(
        code, func.__globals__ if is_function else wrapper.__globals__, name, None,
        wrapper.__closure__,
    )  # fmt: skip
    if is_function and signature is not _GENERIC:
        wrapper.__defaults__ = func.__defaults__
        wrapper.__kwdefaults__ = func.__kwdefaults__
    return functools.update_wrapper(wrapper, func)


def make_method(rec: Any, runner: Callable[..., Any], **cells: Any) -> Any:
    """The wrapt wrapper ``(wrapped, instance, args, kwargs)`` recording a plain method's
    calls through ``rec``, with the same body (``runner(rec, wrapped, instance, args,
    kwargs)`` takes a call while ``_as_slow`` is set)."""
    return _factory(_METHOD, False)(*_cells(None, rec, runner, **cells))
