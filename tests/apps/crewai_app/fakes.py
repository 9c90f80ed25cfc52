"""A local CrewAI model speaking CrewAI's ReAct text format, and a small crew: no network."""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool

TOOL_SLEEP = 0.05


class ScriptedLLM(BaseLLM):
    """Asks for the ``add`` tool once, then gives the final answer; ``delay`` seconds per
    call; ``fail`` raises instead of answering."""

    delay: float = 0.0
    fail: bool = False
    use_tool: bool = True
    tool_name: str = "add"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model="scripted", **kwargs)

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the model is down")
        last = messages if isinstance(messages, str) else messages[-1]["content"]
        if not self.use_tool or "Analyze the tool result" in str(last):
            return "Thought: I now know the final answer\nFinal Answer: 3"
        return (
            f'Thought: I need the tool\nAction: {self.tool_name}\nAction Input: {{"a": 1, "b": 2}}'
        )

    def supports_function_calling(self) -> bool:
        return False


@tool("add")
def add(a: int, b: int) -> int:
    """Add two numbers."""
    time.sleep(TOOL_SLEEP)
    return a + b


@tool("broken")
def broken(a: int, b: int) -> int:
    """Always fails."""
    raise ValueError("broken tool")


def crew(
    *,
    delay: float = 0.0,
    fail: bool = False,
    use_tool: bool = True,
    tools: list | None = None,
    name: str = "newsroom",
    roles: tuple[str, ...] = ("Researcher",),
) -> Crew:
    """A sequential crew: one agent and one task per role."""
    agents, tasks = [], []
    for role in roles:
        tool_list = [add] if tools is None else tools
        tool_name = tool_list[0].name if tool_list else "add"
        llm = ScriptedLLM(delay=delay, fail=fail, use_tool=use_tool, tool_name=tool_name)
        agent = Agent(
            role=role,
            goal="add numbers",
            backstory="counts",
            llm=llm,
            tools=tool_list,
            max_retry_limit=0,
            verbose=False,
        )
        agents.append(agent)
        tasks.append(Task(description="add 1 and 2", expected_output="a number", agent=agent))
    return Crew(agents=agents, tasks=tasks, name=name, verbose=False)
