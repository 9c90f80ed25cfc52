"""Calls its agent 8 times (one failure), then waits to be stopped."""

import sys
import time

import fleet_agents

for i in range(7):
    fleet_agents.plan(i)
try:
    fleet_agents.plan(-1)
except ValueError:
    pass
open(sys.argv[1], "w").write("done")
time.sleep(120)
