"""What agentstat puts in place of a callable, besides a plain closure: its proxies.

- :class:`AgentstatFunctionWrapper` (wrapt): methods, static/class methods and callable
  objects named by dotted path, where wrapt's descriptor binding hands the wrapper the
  instance (``=@attribute`` names, integrations keyed by object); and a decorated
  callable object that returns a stream.
- :class:`StreamFunction`: a generator or async generator function (decorated, or a
  module function by dotted path). It must stay a generator function to
  ``inspect.isgeneratorfunction``/``isasyncgenfunction`` (frameworks decide to stream
  on it) and bind the arguments at the call (a bad call raises there, not at the first
  chunk), which no closure can do; a wrapt proxy does both but costs ~0.5 µs a call, so
  this is the few lines of it that a function needs (~0.1 µs).

Both pickle as what they wrap does (a function by reference, a callable object by
value, bare) and copy as themselves; :func:`is_wrapped` recognises them and
agentstat's closures (by :data:`MARKER` or :data:`PATH_MARKER`).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType
from typing import Any

import wrapt

from agentstat.instrumentation._runners import _SUPPRESS, _SUPPRESS_OLD, _current


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


#: Set on agentstat's own closures and stream functions, for the same purpose: by a
#: decorator (MARKER) or by a dotted path (PATH_MARKER); the value is the recorder.
MARKER = "__agentstat_recorder__"
PATH_MARKER = "__agentstat_path_recorder__"


def is_wrapped(value: Any) -> bool:
    """True if ``value`` is already recording through agentstat (decorator or by path)."""
    if issubclass(type(value), AgentstatFunctionWrapper | StreamFunction):
        return True
    try:
        marks = value.__dict__ if isinstance(value, FunctionType) else {}
        return MARKER in marks or PATH_MARKER in marks
    except Exception:
        return False


class StreamFunction:
    """A generator or async generator function whose streams are timed.

    Calling it calls the function (the arguments bind now) and hands the stream to
    ``timed`` with ``rec`` (under ``suppress_instrumentation()``, the bare stream goes
    back). To introspection it is the function: ``isinstance(f, FunctionType)`` holds,
    and ``__code__``, ``__defaults__`` and every attribute it does not have come from
    the function; ``__wrapped__``, name, docstring and annotations are copied as
    ``functools.wraps`` does (so attributes set on it afterwards stay on it, as on a
    decorated function); it binds to an instance as a method and can be weakly
    referenced.
    """

    __slots__ = ("__dict__", "__weakref__", "__wrapped__", "_rec", "_timed")

    def __init__(self, func: FunctionType, rec: Any, timed: Callable[[Any, Any], Any]) -> None:
        functools.update_wrapper(self, func)  # sets __wrapped__
        self._rec, self._timed = rec, timed

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # what isinstance() and inspect see
        return FunctionType

    def __getattr__(self, name: str) -> Any:
        if name == "__wrapped__":  # not set yet (made without __init__): no recursion
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        stream = self.__wrapped__(*args, **kwargs)
        ctx = _current()
        if ctx and (ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_OLD)):
            return stream
        return self._timed(self._rec, stream)

    def __repr__(self) -> str:
        return f"<agentstat stream function {self.__qualname__}>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__qualname__  # a global name, checked by pickle to be this object

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self
