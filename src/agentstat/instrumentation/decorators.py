"""``@agent`` and ``@tool``: the code-first way to record the same metrics.

::

    import agentstat

    @agentstat.agent                 # name: the function's qualified name
    async def plan(task): ...

    @agentstat.tool("web_search")
    def search(query): ...

Decorated calls are recorded from the first call on, whether or not instrumentation has
started yet; :func:`agentstat.start_metrics_server` or
``AgentstatInstrumentor().instrument(meter_provider=...)`` exports what was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from agentstat.instrumentation._wrappers import AGENT, TOOL, Recorder, decorate

F = TypeVar("F", bound=Callable[..., Any])


def _decorator(kind: str, name_or_func: Any, name: str | None) -> Any:
    if callable(name_or_func) and name is None:
        func = name_or_func
        return decorate(func, Recorder(kind, getattr(func, "__qualname__", func.__name__)))
    chosen = name if name is not None else name_or_func
    if chosen is not None and (not isinstance(chosen, str) or not chosen):
        raise ValueError(f"@{kind} takes a non-empty name string, not {chosen!r}")

    def apply(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@{kind} decorates a function or method, not {type(func).__name__}")
        recorder = Recorder(kind, chosen or getattr(func, "__qualname__", func.__name__))
        return decorate(func, recorder)  # type: ignore[return-value]

    return apply


@overload
def agent(name_or_func: F, /) -> F: ...
@overload
def agent(name_or_func: str | None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
def agent(name_or_func: Any = None, /, *, name: str | None = None) -> Any:
    """Record each call as ``gen_ai.invoke_agent.duration`` under ``gen_ai.agent.name``."""
    return _decorator(AGENT, name_or_func, name)


@overload
def tool(name_or_func: F, /) -> F: ...
@overload
def tool(name_or_func: str | None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
def tool(name_or_func: Any = None, /, *, name: str | None = None) -> Any:
    """Record each call as ``gen_ai.execute_tool.duration`` under ``gen_ai.tool.name``."""
    return _decorator(TOOL, name_or_func, name)
