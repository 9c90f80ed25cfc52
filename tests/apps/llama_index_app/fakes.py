"""LlamaIndex agents on MockFunctionCallingLLM with a scripted response generator: no
network."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

TOOL_SLEEP = 0.05
_MODELS = itertools.count()


def script(*steps: Any, delay: float = 0.0, fail: bool = False) -> MockFunctionCallingLLM:
    """A model answering with ``steps[n]`` after n tool results since the last user
    message: a ``(tool, kwargs)`` pair is a tool call, a string the final answer."""

    prefix = f"call-{next(_MODELS)}-"

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        if delay:
            time.sleep(delay)
        if fail:
            raise RuntimeError("the model is down")
        answered = 0  # results of this model's own calls since the user's message
        for message in reversed(messages):
            if message.role == MessageRole.USER:
                break
            call_id = str(message.additional_kwargs.get("tool_call_id", ""))
            answered += message.role == MessageRole.TOOL and call_id.startswith(prefix)
        step = steps[min(answered, len(steps) - 1)]
        if isinstance(step, str):
            return ChatMessage(role="assistant", content=step)
        name, arguments = step
        call = ToolCallBlock(
            tool_call_id=f"{prefix}{answered}", tool_name=name, tool_kwargs=arguments
        )
        return ChatMessage(role="assistant", blocks=[call])

    return MockFunctionCallingLLM(response_generator=respond)


async def add(a: int, b: int) -> int:
    """Add two numbers."""
    await asyncio.sleep(TOOL_SLEEP)
    return a + b


def broken(a: int, b: int) -> int:
    """Always fails."""
    raise ValueError("broken tool")


ADD = FunctionTool.from_defaults(add)
BROKEN = FunctionTool.from_defaults(broken)


def calculator(delay: float = 0.0, fail: bool = False, tool: FunctionTool = ADD) -> FunctionAgent:
    return FunctionAgent(
        name="calculator",
        description="adds numbers",
        tools=[tool],
        llm=script((tool.metadata.name, {"a": 1, "b": 2}), "3", delay=delay, fail=fail),
    )


def workflow(delay: float = 0.0, name: str | None = "support") -> AgentWorkflow:
    """``triage`` hands off to ``calculator``, which adds and answers."""
    triage = FunctionAgent(
        name="triage",
        description="routes questions",
        tools=[],
        llm=script(("handoff", {"to_agent": "calculator", "reason": "math"}), "ok", delay=delay),
        can_handoff_to=["calculator"],
    )
    kwargs = {"workflow_name": name} if name else {}
    return AgentWorkflow(agents=[triage, calculator(delay)], root_agent="triage", **kwargs)


def reasoner() -> ReActAgent:
    """A ReAct agent (text protocol, no function calling) that uses ``add`` once."""

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        if any("Observation:" in (message.content or "") for message in messages[1:]):
            return ChatMessage(role="assistant", content="Thought: I can answer.\nAnswer: 3")
        action = 'Thought: I need a tool.\nAction: add\nAction Input: {"a": 1, "b": 2}'
        return ChatMessage(role="assistant", content=action)

    llm = MockFunctionCallingLLM(response_generator=respond)
    return ReActAgent(name="reasoner", tools=[ADD], llm=llm)
