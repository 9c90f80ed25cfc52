"""Tools and series keys shared by the framework tests: each framework decorates the same
plain functions its own way."""

from __future__ import annotations

from agentstat import semconv

TOOLS = semconv.TOOL_DURATION


def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


def broken(q: str) -> str:
    """Always fails."""
    raise KeyError(q)


def tool_key(tool: str, agent: str = "", error: str = "") -> tuple[str, ...]:
    """The attribute values of a function-tool series, as ``testing.series`` keys them."""
    values = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: tool,
        semconv.ERROR_TYPE: error,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_TOOL_TYPE: "function",
    }
    return tuple(values.get(attribute, "") for attribute in TOOLS.attributes)
