"""Starts, then imports its agents (after instrumentation was set up), then works."""

import importlib
import pathlib
import sys
import time

agents = importlib.import_module("fleet_agents")
for i in range(5):
    agents.plan(f"ok-{i}")
for i in range(3):
    try:
        agents.plan(f"bad-{i}")
    except ValueError:
        pass
try:
    agents.plan("key")
except KeyError:
    pass
researcher = agents.Researcher()
researcher.run(0.6)
researcher.run(0.3)
for i in range(4):
    agents.search(i)
pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
