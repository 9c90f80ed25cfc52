"""Two agent calls, then ``calls=N``: what this process recorded (the endpoint may be off)."""

import agents

import agentstat.testing

agents.planner(0)
agents.planner(0)
print(f"calls={agentstat.testing.calls('agent', 'planner')}", flush=True)
