"""Functions the call benchmarks time, importable by dotted path.

``bare_*`` are never wrapped (the baseline and what the decorators wrap); ``patched_*``
are the targets of ``AgentstatInstrumentor().instrument(agents=[...])``, which replaces
the module attribute (a closure for a function, a wrapt proxy for a method), exactly
as the zero-code path does in a user's module. Bodies do the least possible work so
the wrapper's cost is what shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

#: Chunks per stream in the generator benchmarks.
CHUNKS = 10


def bare_sync(x: int) -> int:
    return x


async def bare_async(x: int) -> int:
    return x


def bare_stream(n: int) -> Iterator[int]:
    yield from range(n)


async def bare_astream(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


def patched_sync(x: int) -> int:
    return x


async def patched_async(x: int) -> int:
    return x


def patched_stream(n: int) -> Iterator[int]:
    yield from range(n)


async def patched_astream(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Agent:
    """Methods for the method-by-path benchmark (``_timed:Agent.patched_run``)."""

    def bare_run(self, x: int) -> int:
        return x

    def patched_run(self, x: int) -> int:
        return x


#: Suspensions inside the call in the "awaits inside the call" benchmark.
AWAITS = 30


class _Suspend:
    """Suspends its awaiting coroutine once (what an await on I/O does), no event loop."""

    __slots__ = ()

    def __await__(self) -> Iterator[None]:
        yield


SUSPEND = _Suspend()


async def bare_awaits(n: int) -> int:
    for _ in range(n):
        await SUSPEND
    return n
