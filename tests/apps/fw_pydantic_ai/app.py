"""pydantic-ai under opentelemetry-instrument: imported after start-up, no agentstat code.

planner: 3 runs (2 run_sync, 1 streamed that takes >= 0.15 s), lookup called twice;
helper (unnamed; pydantic-ai infers "helper"): 1 run that fails with RuntimeError.
"""

import asyncio
import pathlib
import sys
import time

from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import FunctionModel


def reply(messages, info):
    last = messages[-1].parts[-1]
    if last.part_kind == "user-prompt":
        if last.content == "fail":
            raise RuntimeError("model down")
        if last.content == "use lookup":
            return ModelResponse(parts=[ToolCallPart("lookup", {"q": "x"})])
    return ModelResponse(parts=[TextPart("done")])


async def slow_stream(messages, info):
    await asyncio.sleep(0.05)
    yield "hel"
    await asyncio.sleep(0.1)
    yield "lo"


planner = Agent(FunctionModel(reply, stream_function=slow_stream), name="planner")


@planner.tool_plain
def lookup(q: str) -> str:
    return f"found {q}"


planner.run_sync("use lookup")
planner.run_sync("use lookup")


async def stream() -> None:
    async with planner.run_stream("hello") as result:
        await result.get_output()


asyncio.run(stream())

helper = Agent(FunctionModel(reply))
try:
    helper.run_sync("fail")
except RuntimeError:
    pass
assert helper.name == "helper", helper.name

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
