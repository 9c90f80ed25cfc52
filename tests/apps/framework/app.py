"""Runs fakefw agents: planner x2 (+1 failing), writer x1, then the crew once; writes argv[1]."""

import contextlib
import importlib
import pathlib
import sys
import time

agents = importlib.import_module("app_agents")
agents.planner.run("a")
agents.planner.run("b")
with contextlib.suppress(ValueError):
    agents.planner.run("fail")
agents.writer.run("c")
agents.crew.kickoff("d")
for _chunk in agents.writer.stream("e"):  # the stream alone is one run too
    pass

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
