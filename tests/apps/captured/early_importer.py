"""Imports a tool by name before agentstat wraps it: its own reference stays unwrapped."""

from captured_tools import free

__all__ = ["free"]
