"""Callees of the call shapes a plain call hands back (see benchmarks/calls.py).

``bare_*`` are never wrapped; ``patched_*`` are wrapped by dotted path. Bodies do the
least possible work, so what shows is the cost of timing each shape to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator


async def _work(x: int) -> int:
    return x


def bare_returns_coroutine(x: int):
    return _work(x)


def patched_returns_coroutine(x: int):
    return _work(x)


def bare_returns_future(x: int) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(x)
    return future


def patched_returns_future(x: int) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(x)
    return future


@contextlib.asynccontextmanager
async def bare_run_stream(x: int) -> AsyncIterator[int]:
    yield x


@contextlib.asynccontextmanager
async def patched_run_stream(x: int) -> AsyncIterator[int]:
    yield x


class Invoker:
    name = "invoker"

    async def __call__(self, x: int) -> int:
        return x


bare_invoker = Invoker()
patched_invoker = Invoker()


def bare_returns_generator(n: int) -> Iterator[int]:
    return (i for i in range(n))


def patched_returns_generator(n: int) -> Iterator[int]:
    return (i for i in range(n))


class Agent:
    name = "named-agent"

    async def bare_run(self, x: int) -> int:
        return x

    async def patched_run(self, x: int) -> int:
        return x


AGENT = Agent()
