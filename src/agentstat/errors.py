"""Exceptions agentstat raises on purpose. Everything else it catches and logs, because
instrumentation must never raise into the code it wraps."""

from __future__ import annotations


class AgentstatError(Exception):
    """Base class of agentstat's own errors."""


class ConfigError(AgentstatError, ValueError):
    """A setting is malformed (bad entry, bad TOML, unknown key, bad number)."""


class TargetError(AgentstatError):
    """A configured target cannot be instrumented (missing module or attribute, not
    callable, or not of the shape its kind requires). The message names the entry."""
