"""Drives every call shape of callees.py a known number of times, then writes argv[1].

Counts (success / Boom / cancelled) are asserted by tests/test_call_shapes.py.
"""

import asyncio
import contextlib
import gc
import importlib
import pathlib
import sys
import time

callees = importlib.import_module("callees")  # imported after start-up, as apps do


async def main() -> None:
    # coroutine: 2 ok, 1 Boom
    for fail in (False, False, True):
        with contextlib.suppress(callees.Boom):
            await callees.returns_coroutine(fail)
    # task: 2 ok, 1 Boom, 1 cancelled
    for fail in (False, False, True):
        with contextlib.suppress(callees.Boom):
            await callees.returns_task(fail)
    task = callees.returns_task()
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # async context manager: 2 ok, 1 Boom, 1 cancelled block
    for fail in (False, False, True):
        with contextlib.suppress(callees.Boom):
            async with callees.run_stream(fail):
                pass

    async def abandon() -> None:
        async with callees.run_stream():
            await asyncio.sleep(10)

    waiting = asyncio.ensure_future(abandon())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    # async __call__: 3 ok, 1 Boom
    for fail in (False, False, False, True):
        with contextlib.suppress(callees.Boom):
            await callees.lookup(fail)
    # returned async generator: 2 whole streams
    for _ in range(2):
        async for _chunk in callees.returns_async_generator(3):
            pass


asyncio.run(main())

# concurrent future: 2 ok, 1 Boom; one never completed and dropped: cancelled
for fail in (False, False, True):
    with contextlib.suppress(callees.Boom):
        callees.returns_future(fail).result()
pending = callees.returns_pending_future()
del pending
gc.collect()
# returned generator: 2 whole streams, 1 abandoned after its first chunk
for _ in range(2):
    for _chunk in callees.returns_generator(3):
        pass
stream = callees.returns_generator(3)
next(stream)
stream.close()
# names from the instance: alice x2, bob x1, an unnamed one falls back to the qualname
for name in ("alice", "alice", "bob", None):
    callees.Agent(name).run()

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
