"""An integration for ``fakefw`` written against agentstat's integration base, as a
framework integration in ``agentstat.integrations`` would be (loaded through its own
``agentstat_fakefw`` entry point; it imports ``fakefw`` only in ``_patch``)."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from agentstat.integrations import FrameworkInstrumentor, current_agent_name, start_run


class FakeFrameworkInstrumentor(FrameworkInstrumentor):
    framework = "fakefw"
    distribution = "fakefw"
    supported = os.environ.get("FAKEFW_SUPPORTED", ">= 1.0, < 2")

    def _patch(self, module: ModuleType) -> None:
        self._module = module
        wrapt.wrap_function_wrapper(module, "Agent.run", _agent_call)
        wrapt.wrap_function_wrapper(module, "Agent.stream", _agent_stream)
        wrapt.wrap_function_wrapper(module, "Tool.invoke", _tool_call)
        wrapt.wrap_function_wrapper(module, "Crew.kickoff", _crew_call)

    def _unpatch(self) -> None:
        for owner, name in (("Agent", "run"), ("Agent", "stream"), ("Tool", "invoke"),
                            ("Crew", "kickoff")):  # fmt: skip
            unwrap(getattr(self._module, owner), name)


def _timed(run: Any, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    run.finish()
    return result


def _agent_call(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _timed(start_run("agent", instance.name, key=instance), wrapped, args, kwargs)


def _agent_stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = start_run("agent", instance.name, key=instance)  # None inside run(): delegation
    stream = wrapped(*args, **kwargs)
    if run is None:
        return stream

    def timed() -> Any:
        try:
            first = True
            for chunk in stream:
                if first:
                    run.first_chunk()
                    first = False
                yield chunk
        except BaseException as exc:
            run.finish(exc)
            raise
        run.finish()

    return timed()


def _tool_call(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = start_run("tool", instance.name, agent_name=current_agent_name(), tool_type="function")
    return _timed(run, wrapped, args, kwargs)


def _crew_call(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _timed(start_run("workflow", instance.name, key=instance), wrapped, args, kwargs)
