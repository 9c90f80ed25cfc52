"""Old import path of ``@agent``/``@tool``; they live in
:mod:`agentstat.instrumentation.decorators` now."""

from agentstat.instrumentation.decorators import agent, tool

__all__ = ["agent", "tool"]
