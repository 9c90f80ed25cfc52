"""Imports its agents after start-up and prints which targets are wrapped, as JSON."""

import json

import startup_agents

print(
    json.dumps({name: type(getattr(startup_agents, name)).__name__ for name in ("plan", "search")})
)
