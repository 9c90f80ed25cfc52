"""A tiny agent framework, to test the integration base without a real one.

Shaped like the real ones where it matters: ``Agent.run`` delegates to the generator
``Agent.stream`` (LangGraph's ``invoke`` -> ``stream``), ``@tool`` turns a function into
a framework object at definition time, ``tools=[fn]`` captures plain functions, and a
``Crew`` runs several agents as one workflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any


class Tool:
    """A function captured by the framework; not callable itself (``invoke`` runs it)."""

    def __init__(self, func: Callable[[str], Any]) -> None:
        self.func = func
        self.name = func.__name__

    def invoke(self, task: str) -> Any:
        return self.func(task)


def tool(func: Callable[[str], Any]) -> Tool:
    return Tool(func)


class Agent:
    def __init__(self, name: str, tools: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.name = name
        self.tools = [t if isinstance(t, Tool) else Tool(t) for t in tools]

    def run(self, task: str) -> Any:
        result = None
        for result in self.stream(task):  # noqa: B007 -- the last chunk is the answer
            pass
        return result

    def stream(self, task: str) -> Iterator[Any]:
        time.sleep(0.05)
        if task == "fail":
            raise ValueError("the model refused")
        for each in self.tools:
            yield each.invoke(task)
        yield "done"


class Crew:
    def __init__(self, name: str, agents: list[Agent]) -> None:
        self.name = name
        self.agents = agents

    def kickoff(self, task: str) -> list[Any]:
        return [agent.run(task) for agent in self.agents]
