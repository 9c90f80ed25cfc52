"""Record durations from your own code: callbacks, event listeners, framework hooks.

::

    import agentstat

    agentstat.record("tool", "web_search", 0.42)                     # seconds
    agentstat.record("agent", "planner", 1.9, error=exc)             # error.type: class name
    agentstat.record("tool", "search", 0.1, agent_name="planner", tool_type="function")

    with agentstat.timed("agent", "planner"):                        # or `async with`
        ...

    @agentstat.timed("tool", "web_search")                           # any call shape
    async def search(query): ...

The same metrics, caps and ``error.type`` rules as the decorators and dotted paths:
``kind`` is ``"agent"`` (``gen_ai.invoke_agent.duration``), ``"tool"``
(``gen_ai.execute_tool.duration``, optionally with ``gen_ai.agent.name`` and
``gen_ai.tool.type``) or ``"workflow"`` (``gen_ai.workflow.duration``). An exception is
recorded by its class name (``"cancelled"`` for ``asyncio.CancelledError`` and
``GeneratorExit``); a string is used as ``error.type`` as it is — pass a fixed value per
kind of failure, never a message. Nothing is recorded under
``suppress_instrumentation()``.

Misuse (an unknown kind, an empty name, a negative or non-finite duration, an error
that is neither an exception nor a string) raises ``ValueError`` at once; a failure
while recording is logged once and never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

from agentstat._metrics.caps import CAPS
from agentstat.instrumentation import _runners, _wrappers
from agentstat.instrumentation._wrappers import Recorder

__all__ = ["record", "timed"]

F = TypeVar("F", bound=Callable[..., Any])

#: (kind, name, agent_name, tool_type) -> Recorder; bounded, so runaway names cost a
#: new recorder per call rather than memory (their names are capped to ``_OTHER``).
_RECORDERS: dict[tuple[str, str, str | None, str | None], Recorder] = {}
_MAX_KEPT = 4096


def forget_recorders() -> None:
    """Drop the kept recorders (``agentstat.testing.reset``)."""
    _RECORDERS.clear()


def recorder(
    kind: str, name: str, agent_name: str | None = None, tool_type: str | None = None
) -> Recorder:
    """The recorder for one name (validated; ValueError on misuse), reused across calls."""
    key = (kind, name, agent_name, tool_type)
    found = _RECORDERS.get(key)
    # A recorder made before caps were reset (agentstat.testing.reset) is made afresh.
    if found is not None and found.names_cap is CAPS.names(found.metric_name):
        return found
    found = Recorder(kind, name, agent_name, tool_type)
    if len(_RECORDERS) >= _MAX_KEPT:
        _RECORDERS.clear()
    _RECORDERS[key] = found
    return found


def error_value(error: Any) -> str:
    """``error.type`` for ``record(error=...)``: "" for None; ValueError on misuse."""
    if error is None:
        return ""
    if isinstance(error, BaseException) or (
        isinstance(error, type) and issubclass(error, BaseException)
    ):
        return _wrappers.error_type(error)
    if isinstance(error, str) and error:
        return error
    raise ValueError(
        f"error must be an exception, an exception class or a non-empty string, not {error!r}"
    )


def _seconds(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"seconds must be a number, not {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be finite and not negative, not {seconds!r}")
    return float(seconds)


def record(
    kind: str,
    name: str,
    seconds: float,
    *,
    error: BaseException | str | None = None,
    agent_name: str | None = None,
    tool_type: str | None = None,
) -> None:
    """Record one finished ``kind`` call of ``name`` that took ``seconds``.

    ``error``: the exception it failed with (recorded by class name), a fixed string
    used as ``error.type``, or None for success. ``agent_name``/``tool_type`` fill a
    tool record's ``gen_ai.agent.name``/``gen_ai.tool.type``.
    """
    rec = recorder(kind, name, agent_name, tool_type)
    value = _seconds(seconds)
    kind_of_error = error_value(error)
    if _wrappers._suppressed():
        return
    rec.observe(value, kind_of_error)


class timed:
    """Time a block (``with``/``async with``) or every call of a function (as a decorator).

    The block's duration (``perf_counter``) is recorded with the class of the exception
    that left it, which is re-raised unchanged. One object times one block at a time;
    nested blocks on the same object are fine, concurrent ones need one object each
    (they are cheap), or use it as a decorator, which times each call on its own.
    """

    __slots__ = ("_open", "_rec")

    def __init__(
        self,
        kind: str,
        name: str,
        *,
        agent_name: str | None = None,
        tool_type: str | None = None,
    ) -> None:
        self._rec = recorder(kind, name, agent_name, tool_type)
        self._open: list[tuple[float, Any, Any] | None] = []

    def __enter__(self) -> timed:
        if _wrappers._suppressed():
            self._open.append(None)
            return self
        tracer = _runners._tracer
        span, token = (None, None) if tracer is None else self._rec.start_span(tracer)
        self._open.append((perf_counter(), span, token))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        opened = self._open.pop() if self._open else None
        if opened is None:
            return
        start, span, token = opened
        failure = None if exc_type is None else (exc if exc is not None else exc_type)
        self._rec.finish(start, failure, span, token)

    async def __aenter__(self) -> timed:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorate ``func``: each call is timed like ``@agentstat.agent``/``tool`` does,
        whatever its shape (plain, async, generator, or returning a coroutine/handle)."""
        if not callable(func):
            raise TypeError(f"timed decorates a function or method, not {type(func).__name__}")
        return _wrappers.decorate(func, self._rec)  # type: ignore[return-value]
