"""smolagents: per-agent and per-tool durations, streamed runs timed to their end.

On as soon as ``smolagents`` is imported (``opentelemetry-instrument``, or
``SmolagentsInstrumentor().instrument()`` in code); nothing to configure::

    agent = ToolCallingAgent(tools=[get_weather], model=model, name="forecaster")
    agent.run("Weather in Paris?")
    # gen_ai.invoke_agent.duration{gen_ai.agent.name="forecaster"}
    # gen_ai.execute_tool.duration{gen_ai.tool.name="get_weather",
    #                              gen_ai.agent.name="forecaster", gen_ai.tool.type="function"}

Names: an agent by its ``name`` (the class name, e.g. ``ToolCallingAgent``, when it has
none), a tool by its ``name``. A managed agent is recorded under its own name, inside
its manager's run; ``final_answer`` is a tool like any other in smolagents and is
recorded as one.

**The hooks, and why.** ``MultiStepAgent._run_stream`` is the one generator every run
goes through: ``run()`` drains it, ``run(stream=True)`` hands it to the caller. Timing
it from its first step to its end covers both exactly once (naming ``run`` as well
would count twice, and ``run(stream=True)`` returns at once). The time to its first
step is recorded as time to first chunk. A stream the caller abandons is recorded as
``cancelled``; an exception leaving the run (a model error, an interrupt) by its
class. ``Tool.__call__`` is the one entry every tool call goes through — tool-calling
agents, code agents' generated code, and direct calls — and its ``forward`` errors
leave it as exceptions, recorded by class before smolagents turns them into its own
error for the model. A tool's ``gen_ai.agent.name`` is the agent whose run is open
around it: tools run in parallel threads keep it (smolagents copies the context), and
so do tools called by a code agent's code, which smolagents runs in a new thread for
its timeout (agentstat hands that thread its open runs, nothing else).

Off: ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_smolagents``, or
``SmolagentsInstrumentor().uninstrument()``.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Generator
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from agentstat import semconv
from agentstat.instrumentation import _wrappers
from agentstat.instrumentation._wrappers import ACTIVE
from agentstat.integrations._base import (
    FrameworkInstrumentor,
    Run,
    current_agent_name,
    start_run,
)
from agentstat.integrations._patching import call, stepped_stream

__all__ = ["SmolagentsInstrumentor"]

#: ``gen_ai.tool.type`` of smolagents tools (run by the agent, client side).
TOOL_TYPE = "function"


def _name(instance: Any) -> str:
    name = getattr(instance, "name", None)
    return name if isinstance(name, str) and name else type(instance).__name__


def _start(kind: str, instance: Any, **kwargs: Any) -> Run | None:
    try:
        return start_run(kind, _name(instance), key=instance, **kwargs)
    except Exception:
        _wrappers.log_failure()
        return None


def _run_stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _timed_steps(wrapped(*args, **kwargs), instance)


def _timed_steps(steps: Generator[Any, Any, Any], agent: Any) -> Generator[Any, Any, Any]:
    """Yields what ``steps`` yields; the run opens at the first step, so a stream handed
    back by ``run(stream=True)`` is timed while it is consumed, not while it waits. The
    run is open in the context only while ``steps`` runs (:meth:`Run.attached`).
    smolagents' own generator answers ``close()`` with ``RuntimeError("generator ignored
    GeneratorExit")``: the run is recorded as ``cancelled`` and that error passes on
    unchanged (:func:`~agentstat.integrations._patching.stepped_stream`)."""
    run = _start(semconv.AGENT, agent)
    if run is None:
        return (yield from steps)
    run.detach()
    return (yield from stepped_stream(steps, run, run.attached))


def _tool_call(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = _start(semconv.TOOL, instance, agent_name=current_agent_name(), tool_type=TOOL_TYPE)
    return call(run, wrapped, args, kwargs)


def _timeout(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``local_python_executor.timeout(seconds)``: a code agent's code runs in a new
    thread, which starts with an empty context; the decorated function is run there
    with agentstat's open runs only (nothing else of the caller's context), so the tools
    that code calls keep their agent's name."""
    decorator = wrapped(*args, **kwargs)

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def run_timed(*call_args: Any, **call_kwargs: Any) -> Any:
            active = ACTIVE.get()
            if not active:
                return decorator(func)(*call_args, **call_kwargs)

            def in_thread(*a: Any, **k: Any) -> Any:
                return contextvars.Context().run(_with_runs, active, func, a, k)

            return decorator(in_thread)(*call_args, **call_kwargs)

        return run_timed

    return decorate


def _with_runs(active: tuple[Any, ...], func: Any, args: tuple, kwargs: dict) -> Any:
    ACTIVE.set(active)
    return func(*args, **kwargs)


class SmolagentsInstrumentor(FrameworkInstrumentor):
    """Agent and tool durations for smolagents (see the module doc)."""

    framework = "smolagents"
    distribution = "smolagents"
    supported = ">= 1.20, < 2"

    def _patch(self, module: ModuleType) -> None:
        wrapt.wrap_function_wrapper("smolagents.agents", "MultiStepAgent._run_stream", _run_stream)
        wrapt.wrap_function_wrapper("smolagents.tools", "Tool.__call__", _tool_call)
        wrapt.wrap_function_wrapper("smolagents.local_python_executor", "timeout", _timeout)

    def _unpatch(self) -> None:
        from smolagents import agents, local_python_executor, tools

        unwrap(agents.MultiStepAgent, "_run_stream")
        unwrap(tools.Tool, "__call__")
        unwrap(local_python_executor, "timeout")
