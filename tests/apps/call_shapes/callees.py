"""Callees of every call shape, each sleeping SLEEP seconds: imported by app.py after
opentelemetry-instrument has started, and named by AGENTSTAT_AGENTS/AGENTSTAT_TOOLS."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

#: Inside le="0.25", outside le="0.1": the buckets show the real duration was timed.
SLEEP = 0.15
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2)


class Boom(Exception):
    pass


async def _work(fail: bool) -> str:
    await asyncio.sleep(SLEEP)
    if fail:
        raise Boom("failed")
    return "done"


def returns_coroutine(fail: bool = False):
    """A plain function handing back its coroutine (``def run(): return self._run()``)."""
    return _work(fail)


def returns_task(fail: bool = False) -> asyncio.Task:
    """A handle completed later (LlamaIndex's ``agent.run()`` returns one)."""
    return asyncio.ensure_future(_work(fail))


def _blocking(fail: bool) -> str:
    time.sleep(SLEEP)
    if fail:
        raise Boom("failed")
    return "done"


def returns_future(fail: bool = False) -> concurrent.futures.Future:
    """A concurrent.futures handle, completed in a worker thread."""
    return POOL.submit(_blocking, fail)


def returns_pending_future() -> concurrent.futures.Future:
    """A handle nobody ever completes: dropped, it counts as cancelled."""
    return concurrent.futures.Future()


@contextlib.asynccontextmanager
async def run_stream(fail: bool = False) -> AsyncIterator[str]:
    """An async context manager whose block is the run (pydantic-ai's ``run_stream``)."""
    await asyncio.sleep(SLEEP / 2)
    yield "chunk"
    await asyncio.sleep(SLEEP / 2)
    if fail:
        raise Boom("failed")


class ToolInvoker:
    """An object with ``async def __call__`` (openai-agents' tool invoker)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, fail: bool = False) -> str:
        return await _work(fail)


lookup = ToolInvoker("lookup")


def returns_generator(chunks: int) -> Iterator[int]:
    """A plain function returning a stream (smolagents' ``run(stream=True)``)."""

    def stream() -> Iterator[int]:
        for i in range(chunks):
            time.sleep(SLEEP / chunks)
            yield i

    return stream()


def returns_async_generator(chunks: int) -> AsyncIterator[int]:
    async def stream() -> AsyncIterator[int]:
        for i in range(chunks):
            await asyncio.sleep(SLEEP / chunks)
            yield i

    return stream()


class Agent:
    """Many instances, one class: the name comes from each instance (``=@name``)."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def run(self) -> str:
        time.sleep(SLEEP)
        return "done"
