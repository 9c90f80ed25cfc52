"""Functions sent to spawned worker processes by reference (tests/test_pickling.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import agentstat


def plan(x: int) -> int:
    """Wrapped by dotted path in the parent process."""
    return x * 2


class Invoker:
    """A callable object, wrapped by dotted path as a module attribute."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __call__(self, x: int) -> int:
        return x + self.offset


invoke = Invoker(10)


class Planner:
    def run(self, x: int) -> int:
        return x + 1


@agentstat.agent("streamer")
def stream(n: int) -> Iterator[int]:
    """A decorated generator function: a wrapt proxy at module level."""
    yield from range(n)


@agentstat.tool("async-tool")
async def fetch(x: int) -> int:
    return x


def consume(gen_function: Callable[[int], Iterator[int]], n: int) -> list[int]:
    """Runs in the worker: the generator function arrived pickled by reference."""
    return list(gen_function(n))
