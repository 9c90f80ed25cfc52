"""Three agent runs and two agent-workflow runs, then DONE (argv[1])."""

import asyncio
import sys
import time

from fakes import calculator, workflow


async def main() -> None:
    agent = calculator()
    for _ in range(3):
        await agent.run("add 1 and 2")
    support = workflow()
    for _ in range(2):
        await support.run("add 1 and 2")


asyncio.run(main())
open(sys.argv[1], "w").close()
time.sleep(60)
