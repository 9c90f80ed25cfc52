"""The hot path's limits: methods, suspensions inside a call, threads, frames.

With the multi-process mode of the store on (as under a pre-fork server: this process
joins a temporary directory as a member, and a daemon thread writes its snapshot once
a second), four measurements beside their baselines:

- a **method** named by dotted path (``_timed:Agent.patched_run``, a wrapt proxy) beside
  the bare method: target ≤ 1,000 ns added;
- an ``@agent`` coroutine with ``AWAITS`` **suspensions inside the call** beside one
  with none, both driven by ``send(None)`` (no event loop, whose own cost would hide the
  wrapper's): every suspension passes through the wrapper's coroutine frame. Target:
  at most 200 ns more added with 30 suspensions than with none. Beside it, the floor:
  one bare ``async def`` layer awaiting the call and recording nothing, the least any
  wrapper that must see the coroutine finish can be;
- **8 threads** calling one ``@agent`` function beside one thread making the same total
  number of calls: per-call cost ratio ≤ 1.3, and the recorded count must be exact;
- **frames** added per wrapped level, counted at the bottom of a 50-level recursion:
  target ≤ 1 for ``@agent`` (sync and async) and for a function and a method by path.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import agentstat
import agentstat.testing
from agentstat.instrumentation.decorators import agent
from benchmarks import _timed
from benchmarks._harness import Case, Mode, Report, Row, Runner, measure, stmt_runner

SECTION = "hot_path"
METHOD_LIMIT_NS = 1_000.0
AWAITS_LIMIT_NS = 200.0
THREADS = 8
THREAD_RATIO_LIMIT = 1.3
FRAMES_LIMIT = 1.0
LEVELS = 50


@contextmanager
def _member_of_a_multiprocess_store() -> Iterator[None]:
    """This process as a member of a pre-fork server's store, for the whole section."""
    from agentstat._metrics import multiprocess

    with tempfile.TemporaryDirectory(prefix="agentstat-bench-") as path:
        multiprocess.join(path)
        try:
            yield
        finally:
            multiprocess.leave()


def run(mode: Mode, report: Report) -> None:
    agentstat.testing.reset()  # also undoes earlier sections' instrumentation
    instrumentor = agentstat.AgentstatInstrumentor()
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor.instrument(
        meter_provider=provider, agents=[f"{_timed.__name__}:Agent.patched_run=bench-method"]
    )
    try:
        with _member_of_a_multiprocess_store():
            _method(mode, report)
            _awaits(mode, report)
            _threads(mode, report)
            _frames(report)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        agentstat.testing.reset()


def _method(mode: Mode, report: Report) -> None:
    instance = _timed.Agent()
    bare, patched = "method: bare call", "method: agentstat instrument(agents=...) (wrapt)"
    rows = measure(
        SECTION,
        [
            Case(bare, stmt_runner("m(1)", {"m": instance.bare_run})),
            Case(patched, stmt_runner("a.patched_run(1)", {"a": instance}), bare),
        ],
        mode,
        report,
    )
    added = rows[1].value - rows[0].value
    report.target(
        SECTION,
        "method by dotted path: added cost",
        f"{added:,.0f} ns",
        f"≤ {METHOD_LIMIT_NS:,.0f} ns",
        added <= METHOD_LIMIT_NS,
        f"median {rows[1].value:,.0f} − bare {rows[0].value:,.0f} ns (the attribute "
        "lookup binds the method on each call, as in user code)",
    )


def _driven(make: Callable[[], Any]) -> Runner:
    """Runs ``make()`` to completion by ``send(None)``, as an event loop would."""

    def timed(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            coroutine = make()
            try:
                while True:
                    coroutine.send(None)
            except StopIteration:
                pass
        return perf_counter() - start

    return timed


async def _one_layer(n: int) -> int:
    """The least any wrapper that sees a coroutine finish can be: one ``async def``
    frame awaiting it, recording nothing (the floor of the suspension cost)."""
    return await _timed.bare_awaits(n)


def _awaits(mode: Mode, report: Report) -> None:
    decorated = agent("bench-awaits")(_timed.bare_awaits)
    added, floor = {}, {}
    for awaits in (0, _timed.AWAITS):
        bare = f"async, {awaits} suspensions inside: bare call"
        rows = measure(
            SECTION,
            [
                Case(bare, _driven(lambda a=awaits: _timed.bare_awaits(a))),
                Case(
                    f"async, {awaits} suspensions inside: agentstat @agent",
                    _driven(lambda a=awaits: decorated(a)),
                    bare,
                ),
                Case(
                    f"async, {awaits} suspensions inside: one bare async def layer (floor)",
                    _driven(lambda a=awaits: _one_layer(a)),
                    bare,
                ),
            ],
            mode,
            report,
        )
        added[awaits] = rows[1].value - rows[0].value
        floor[awaits] = rows[2].value - rows[0].value
    extra = added[_timed.AWAITS] - added[0]
    floor_extra = floor[_timed.AWAITS] - floor[0]
    report.add(
        Row(
            SECTION,
            f"async @agent: added by {_timed.AWAITS} suspensions inside the call",
            extra,
            "ns/op",
            note=f"{extra / _timed.AWAITS:,.1f} ns per suspension (one coroutine frame); "
            f"one bare async def layer: {floor_extra:,.0f} ns",
        )
    )
    report.target(
        SECTION,
        f"async @agent: {_timed.AWAITS} suspensions inside vs none",
        f"+{extra:,.0f} ns",
        f"≤ +{AWAITS_LIMIT_NS:,.0f} ns",
        extra <= AWAITS_LIMIT_NS,
        f"added {added[_timed.AWAITS]:,.0f} ns with {_timed.AWAITS}, {added[0]:,.0f} ns with "
        f"0; the floor (one bare async def layer) adds +{floor_extra:,.0f} ns",
    )


def _threads(mode: Mode, report: Report) -> None:
    """Per-call cost of one agent called from 8 threads at once vs from one thread."""
    decorated = agent("bench-threads")(_timed.bare_sync)
    # ~0.4 s a run in quick mode, ~1 s in full: thread start-up and the barrier stay
    # negligible, and 8 threads get ~80 switch intervals each.
    calls = max(2_000, int(20_000_000 * mode.round_seconds))

    def worker(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        for i in range(n):
            decorated(i)

    def once(threads: int) -> float:
        barrier = threading.Barrier(threads + 1)
        each = calls // threads
        pool = [threading.Thread(target=worker, args=(each, barrier)) for _ in range(threads)]
        for thread in pool:
            thread.start()
        start = perf_counter()
        barrier.wait()
        for thread in pool:
            thread.join()
        return (perf_counter() - start) / (each * threads) * 1e9

    agentstat.testing.reset()
    single, multi = [], []
    for _ in range(mode.rounds):
        single.append(once(1))
        multi.append(once(THREADS))
    single.sort()
    multi.sort()
    one, eight = single[len(single) // 2], multi[len(multi) // 2]
    recorded = agentstat.testing.calls("agent", "bench-threads")
    expected = mode.rounds * ((calls // 1) * 1 + (calls // THREADS) * THREADS)
    report.add(Row(SECTION, "@agent, 1 thread: per call", one, "ns/op"))
    report.add(
        Row(
            SECTION,
            f"@agent, {THREADS} threads at once: per call",
            eight,
            "ns/op",
            baseline="@agent, 1 thread: per call",
            ratio=eight / one,
            note=f"{recorded:,} calls recorded of {expected:,} made",
        )
    )
    ratio = eight / one
    report.target(
        SECTION,
        f"{THREADS} threads vs 1: per-call cost, counts exact",
        f"{ratio:.2f}×, {'exact' if recorded == expected else 'WRONG COUNT'}",
        f"≤ {THREAD_RATIO_LIMIT}×, exact",
        ratio <= THREAD_RATIO_LIMIT and recorded == expected,
        f"{eight:,.0f} vs {one:,.0f} ns per call; {recorded:,} of {expected:,} recorded",
    )


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _bottom_depth(wrap: Callable[[Callable[..., Any]], Callable[..., Any]], is_async: bool) -> int:
    """Frame depth at the bottom of a ``LEVELS``-deep recursion through ``wrap(fn)``."""
    if is_async:

        async def down_async(n: int) -> int:
            return _depth() if n == 0 else await step(n - 1)

        step = wrap(down_async)
        coroutine = step(LEVELS)
        try:
            coroutine.send(None)
        except StopIteration as stop:
            return int(stop.value)
        raise RuntimeError("the recursion suspended")

    def down(n: int) -> int:
        return _depth() if n == 0 else step(n - 1)

    step = wrap(down)
    return int(step(LEVELS))


def _by_path_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    from agentstat.instrumentation._recorder import Recorder
    from agentstat.instrumentation._wrappers import closure_for

    return closure_for(fn, Recorder("agent", "bench-frames-path"), by_path=True)


def _method_depth(wrapped: bool) -> int:
    """Frame depth at the bottom of a recursion through a method, bare or by path."""
    from agentstat.instrumentation._recorder import Recorder
    from agentstat.instrumentation._wrappers import AgentstatFunctionWrapper, wrapt_wrapper

    class Holder:
        def down(self, n: int) -> int:
            return _depth() if n == 0 else self.down(n - 1)

    if wrapped:
        raw = Holder.__dict__["down"]
        rec = Recorder("agent", "bench-frames-method")
        Holder.down = AgentstatFunctionWrapper(raw, wrapt_wrapper(rec, raw))  # type: ignore[method-assign]
    return int(Holder().down(LEVELS))


def _frames(report: Report) -> None:
    bare_sync = _bottom_depth(lambda fn: fn, False)
    bare_async = _bottom_depth(lambda fn: fn, True)
    depths = {
        "@agent, sync": (_bottom_depth(agent("bench-frames"), False), bare_sync),
        "@agent, async": (_bottom_depth(agent("bench-frames-async"), True), bare_async),
        "function by dotted path": (_bottom_depth(_by_path_function, False), bare_sync),
        "method by dotted path (wrapt)": (_method_depth(True), _method_depth(False)),
    }
    worst = 0.0
    for label, (depth, base) in depths.items():
        per_level = (depth - base) / (LEVELS + 1)  # levels LEVELS down to 0
        worst = max(worst, per_level)
        report.add(
            Row(
                SECTION,
                f"frames added per wrapped level: {label}",
                per_level,
                "frames",
                note=f"at the bottom of a {LEVELS}-level recursion",
            )
        )
    report.target(
        SECTION,
        "frames added per wrapped level",
        f"{worst:g} at most",
        f"≤ {FRAMES_LIMIT:g}",
        worst <= FRAMES_LIMIT,
        "@agent sync and async, a function and a method by dotted path",
    )
