"""``agentstat demo``: a simulated agent fleet that serves real metrics.

- :mod:`.fleet`: the agents, tools, caches, pool and faults;
- :mod:`.summary`: the live table, read from the fleet's own ``/metrics`` page;
- :mod:`.command`: the click command.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "demo_command":  # the CLI entry, imported lazily like every subcommand
        from agentstat.demo.command import demo_command

        return demo_command
    raise AttributeError(f"module 'agentstat.demo' has no attribute {name!r}")
