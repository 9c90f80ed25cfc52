"""Prints the SIGTERM disposition the app runs with (agentstat must leave it alone)."""

import signal

import mp_agents

mp_agents.planner(0)
print(f"sigterm={signal.getsignal(signal.SIGTERM)!r}", flush=True)
