"""A local smolagents model returning tool calls, and small agents: no network."""

from __future__ import annotations

import time
from typing import Any

from smolagents import CodeAgent, Model, ToolCallingAgent, tool
from smolagents.models import (
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    MessageRole,
)

TOOL_SLEEP = 0.05


class ScriptedModel(Model):
    """Calls ``tool_name`` once, then ``final_answer``; ``delay`` seconds per call;
    ``fail`` raises instead of answering."""

    def __init__(
        self, tool_name: str = "add", delay: float = 0.0, fail: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(model_id="scripted", **kwargs)
        self.tool_name, self.delay, self.fail = tool_name, delay, fail

    def generate(self, messages: list, *args: Any, **kwargs: Any) -> ChatMessage:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the model is down")
        answered = any(_role(m) == MessageRole.TOOL_RESPONSE for m in messages)
        if answered:
            name, arguments = "final_answer", {"answer": "3"}
        elif self.tool_name == "calculator":  # a managed agent takes a task
            name, arguments = self.tool_name, {"task": "add 1 and 2"}
        else:
            name, arguments = self.tool_name, {"a": 1, "b": 2}
        call = ChatMessageToolCall(
            id="call", type="function",
            function=ChatMessageToolCallFunction(name=name, arguments=arguments),
        )  # fmt: skip
        return ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=[call])


def _role(message: Any) -> Any:
    return message.role if hasattr(message, "role") else message["role"]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    time.sleep(TOOL_SLEEP)
    return a + b


@tool
def broken(a: int, b: int) -> int:
    """Always fails.

    Args:
        a: the first number
        b: the second number
    """
    raise ValueError("broken tool")


def agent(name: str | None = "calculator", **model: Any) -> ToolCallingAgent:
    tools = [broken] if model.get("tool_name") == "broken" else [add]
    return ToolCallingAgent(
        tools=tools, model=ScriptedModel(**model), name=name, verbosity_level=-1, max_steps=3
    )


def manager() -> ToolCallingAgent:
    """A manager whose one tool call goes to the managed agent ``calculator``."""
    helper = agent("calculator")
    helper.description = "adds numbers"
    return ToolCallingAgent(
        tools=[],
        model=ScriptedModel(tool_name="calculator"),
        managed_agents=[helper],
        name="manager",
        verbosity_level=-1,
        max_steps=3,
    )


class CodeModel(Model):
    """Answers with code that calls ``add`` and gives its result as the final answer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model_id="scripted-code", **kwargs)

    def generate(self, messages: list, *args: Any, **kwargs: Any) -> ChatMessage:
        code = "Thought: add\n<code>\nresult = add(a=1, b=2)\nfinal_answer(result)\n</code>"
        return ChatMessage(role=MessageRole.ASSISTANT, content=code)


def code_agent(name: str = "coder") -> CodeAgent:
    return CodeAgent(tools=[add], model=CodeModel(), name=name, verbosity_level=-1, max_steps=2)
