"""Resident memory after many instrumented calls, and after many distinct agent names.

Pre-aggregation promises memory that depends on the number of series, never on the
number of calls: after the first calls have created the 50 agents' series, 1 M or 10 M
more calls must not grow the resident set. The cardinality cap promises that 100k
distinct agent names (a bug that puts a request id into the name) end in at most
``DEFAULT_MAX_NAMES`` series plus one ``_OTHER``. RSS comes from /proc/self/statm and
is reported as growth from a baseline taken just before each step. This section runs
first (see ``benchmarks.SECTIONS``): in a heap that other sections had grown and freed,
new objects would fill the freed room and RSS would not move. A naive collector, which keeps every
duration, is measured last: its growth is the check that
this process can see growth at all.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import agentstat
from agentstat import semconv
from agentstat._metrics.store import STORE
from benchmarks import _timed
from benchmarks._harness import Mode, Report, Row, rss_bytes
from benchmarks._list_based import ListCollector

SECTION = "memory"
AGENTS = 50
WARMUP_ROUNDS = 1_000
#: Growth tolerated as "flat": allocator noise, not a per-call cost.
FLAT_MIB = 1.0
MIB = 1024 * 1024


def _calls(functions: list[Callable[[int], int]], total: int) -> None:
    for _ in range(total // len(functions)):
        for fn in functions:
            fn(1)


def _settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def _series() -> int:
    return len(STORE.histogram(semconv.AGENT_DURATION))


def run(mode: Mode, report: Report) -> None:
    """Grow call counts and distinct names; report RSS growth and series counts."""
    STORE.reset()
    functions = [agentstat.agent(f"mem-agent-{i:02d}")(_timed.bare_sync) for i in range(AGENTS)]
    _calls(functions, AGENTS * WARMUP_ROUNDS)  # creates the 50 series and warms caches
    before = _settled_rss()
    report.add(
        Row(
            SECTION,
            f"RSS after warm-up ({AGENTS} agents)",
            before / MIB,
            "MiB",
            note=f"{_series()} series",
        )
    )
    done = AGENTS * WARMUP_ROUNDS
    for target in mode.memory_calls:
        _calls(functions, target - done)
        done = target
        growth = (_settled_rss() - before) / MIB
        report.add(
            Row(
                SECTION,
                f"RSS growth after {target:,} calls over {AGENTS} agents",
                growth,
                "MiB",
                note=f"{_series()} series",
            )
        )
        report.target(
            SECTION,
            f"memory flat after {target:,} calls",
            f"{growth:+.2f} MiB",
            f"≤ {FLAT_MIB:g} MiB",
            growth <= FLAT_MIB,
            f"{_series()} series",
        )

    before = _settled_rss()
    names = mode.distinct_names
    for i in range(names):
        agentstat.agent(f"distinct-{i:06d}")(_timed.bare_sync)(1)
    growth = (_settled_rss() - before) / MIB
    series = _series()
    cap = semconv.DEFAULT_MAX_NAMES
    report.add(
        Row(
            SECTION,
            f"RSS growth after {names:,} distinct agent names",
            growth,
            "MiB",
            note=f"{series} series (cap {cap} names + _OTHER)",
        )
    )
    report.target(
        SECTION,
        f"memory flat after {names:,} distinct names",
        f"{growth:+.2f} MiB, {series} series",
        f"≤ {FLAT_MIB:g} MiB, ≤ {cap + 1} series",
        growth <= FLAT_MIB and series <= cap + 1,
        "cardinality cap holds the series count",
    )
    del functions
    STORE.reset()

    baseline = ListCollector()
    before = _settled_rss()
    calls = mode.memory_calls[0]
    baseline_names = [f"mem-agent-{i:02d}" for i in range(AGENTS)]
    for k in range(calls // AGENTS):
        for name in baseline_names:
            baseline.record(name, k * 1e-9)  # a new float per call, as a measured duration is
    growth = (_settled_rss() - before) / MIB
    report.add(
        Row(
            SECTION,
            f"list-keeping collector: RSS growth after {calls:,} calls",
            growth,
            "MiB",
            note="keeps every duration (baseline)",
        )
    )
    del baseline
    gc.collect()
