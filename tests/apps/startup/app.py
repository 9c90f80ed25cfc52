"""Imports its agents after start-up and prints which targets agentstat wraps, as JSON."""

import json

import startup_agents

from agentstat.instrumentation._wrappers import is_wrapped

print(
    json.dumps(
        {
            name: "wrapped" if is_wrapped(getattr(startup_agents, name)) else "bare"
            for name in ("plan", "search")
        }
    )
)
