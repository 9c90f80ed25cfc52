"""openai-agents under opentelemetry-instrument: imported after start-up, no agentstat code.

triage hands off to writer once (workflow "support"); planner runs twice (run_sync and
run_streamed), calling lookup twice in its first run.
"""

import asyncio
import pathlib
import sys
import time

from agents import Agent, RunConfig, Runner, function_tool, set_trace_processors
from agents.testing import ScriptedModel, assistant_message, function_call

set_trace_processors([])  # no export of traces to the vendor's service


@function_tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


writer = Agent(name="writer", model=ScriptedModel([[assistant_message("written")]]))
triage = Agent(
    name="triage",
    model=ScriptedModel([[function_call("transfer_to_writer", {}, call_id="h1")]]),
    handoffs=[writer],
)
assert Runner.run_sync(triage, "hi", run_config=RunConfig(workflow_name="support")).final_output

planner = Agent(
    name="planner",
    model=ScriptedModel(
        [
            [function_call("lookup", {"q": "a"}, call_id="c1")],
            [function_call("lookup", {"q": "b"}, call_id="c2")],
            [assistant_message("done")],
            [assistant_message("streamed")],
        ]
    ),
    tools=[lookup],
)
Runner.run_sync(planner, "hi")


async def stream() -> None:
    result = Runner.run_streamed(planner, "hi")
    async for _ in result.stream_events():
        pass


asyncio.run(stream())

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
