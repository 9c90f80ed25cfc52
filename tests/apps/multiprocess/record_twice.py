"""Two agent calls, then ``calls=N``: what this process recorded (the endpoint may be off)."""

import mp_agents

import agentstat.testing

mp_agents.planner(0)
mp_agents.planner(0)
print(f"calls={agentstat.testing.calls('agent', 'planner')}", flush=True)
