"""Cooperative GIL hand-offs, so that a scrape never stalls the app's threads.

CPython hands the GIL to a waiting thread only after the running one has held it for
the switch interval (5 ms): a scrape that computes for 20 ms in one stretch stalls
every app thread for 5 ms at a time. agentstat never changes the switch interval (an
instrumented app must behave as without it); instead the long loops of a scrape — the
store's snapshot, the multi-process merge, the render — call :func:`checkpoint`, which
inside a :func:`sliced` block sleeps briefly once :data:`SLICE_SECONDS` of work have
gone by. Outside such a block (OTLP exports, tests, benchmarks of the parts) it does
nothing but one thread-local lookup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Work between two pauses: well under the 5 ms switch interval.
SLICE_SECONDS = 0.0005
#: A real sleep: ``time.sleep(0)`` releases the GIL, but the same thread usually takes
#: it back before a waiting one wakes; 0.2 ms is long enough for the waiter to win.
PAUSE_SECONDS = 0.0002

_local = threading.local()


def sleep() -> None:
    """Let a thread waiting for the GIL run (see :data:`PAUSE_SECONDS`)."""
    time.sleep(PAUSE_SECONDS)


class _Slicer:
    __slots__ = ("mark", "pause")

    def __init__(self, pause: Callable[[], None]) -> None:
        self.pause = pause
        self.mark = time.perf_counter()

    def check(self) -> None:
        if time.perf_counter() - self.mark > SLICE_SECONDS:
            self.pause()
            self.mark = time.perf_counter()


def checkpoint() -> None:
    """Pause if this thread is in a :func:`sliced` block and a slice has gone by."""
    slicer = getattr(_local, "slicer", None)
    if slicer is not None:
        slicer.check()


@contextmanager
def sliced(pause: Callable[[], None] | None = sleep) -> Iterator[None]:
    """Make :func:`checkpoint` in this thread call ``pause`` once per slice of work
    (``pause`` None: never, as outside the block)."""
    previous = getattr(_local, "slicer", None)
    _local.slicer = _Slicer(pause) if pause is not None else None
    try:
        yield
    finally:
        _local.slicer = previous
