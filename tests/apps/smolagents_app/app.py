"""Three runs and one streamed run of a smolagents agent, then DONE (argv[1])."""

import sys
import time

from fakes import agent

calculator = agent("calculator")
for _ in range(3):
    calculator.run("add 1 and 2")
for _step in calculator.run("add 1 and 2", stream=True):
    pass
open(sys.argv[1], "w").close()
time.sleep(60)
