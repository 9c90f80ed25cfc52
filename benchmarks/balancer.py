"""Acquire + release per strategy at 10, 1000 and 10 000 instances, vs the list-based O(n).

Every pool is half loaded before timing (5 of each instance's 10 slots taken, through
the balancer itself), so a selection works against a realistic mix rather than an idle
pool. One op is ``with lb.acquire(pool): pass`` (agentstat: choose, count the selection,
release on exit) and ``lb.try_acquire`` + ``lb.release``; the list-based baseline
(benchmarks/_list_based.py) is its ``acquire`` + ``release``, which filters every instance on
every call. The list-based balancer has no power-of-two-choices strategy; that row's ratio is to the
list-based least-loaded selection, the strategy it replaces. Target: ≤ 3 µs at 1000.
"""

from __future__ import annotations

import time

from agentstat.runtime.balancer import AgentInstance, LoadBalancer, Strategy
from benchmarks._harness import Case, Mode, Report, Row, measure, stmt_runner
from benchmarks._list_based import list_balancer

SECTION = "balancer"
POOL = "bench"
CAPACITY = 10
PRELOAD = CAPACITY // 2
LIMIT_NS = 3_000.0
LIMIT_SIZE = 1_000

#: agentstat strategy -> the list-based strategy it is compared with.
LIST_FOR = {
    Strategy.ROUND_ROBIN: "round_robin",
    Strategy.LEAST_LOADED: "least_loaded",
    Strategy.WEIGHTED: "weighted",
    Strategy.POWER_OF_TWO: "least_loaded",
}


def _balancer(strategy: Strategy, size: int) -> tuple[LoadBalancer, float]:
    """A half-loaded balancer, and the seconds its ``register`` calls took."""
    lb = LoadBalancer(strategy)
    start = time.perf_counter()
    for n in range(size):
        lb.register(AgentInstance(f"i{n}", POOL, capacity=CAPACITY))
    registered = time.perf_counter() - start
    for _ in range(size * PRELOAD):
        lb.try_acquire(POOL)
    return lb, registered


def run(mode: Mode, report: Report) -> None:
    """Time every strategy at every size beside the list-based scan; evaluate the target."""
    for size in mode.balancer_sizes:
        cases = []
        for list_strategy in dict.fromkeys(LIST_FOR.values()):
            baseline = list_balancer(list_strategy, size)
            for instance in baseline.instances:  # the same half load, set directly: its
                instance.current_load = PRELOAD  # O(n) acquire would take minutes at 10k
            ns = {"a": baseline.acquire, "r": baseline.release}
            cases.append(
                Case(
                    f"{size:,} instances: list-based O(n) {list_strategy}",
                    stmt_runner("r(a())", ns),
                )
            )
        setup = []
        for strategy in Strategy:
            base = f"{size:,} instances: list-based O(n) {LIST_FOR[strategy]}"
            # One balancer serves both rows: each op leaves the pool as it found it.
            lb, registered = _balancer(strategy, size)
            setup.append(
                Row(
                    SECTION,
                    f"{size:,} instances: register all, {strategy.value}",
                    registered * 1e3,
                    "ms",
                    note="one run, not a median",
                )
            )
            cases.append(
                Case(
                    f"{size:,} instances: agentstat {strategy.value}, with acquire()",
                    stmt_runner("with a(p): pass", {"a": lb.acquire, "p": POOL}),
                    base,
                )
            )
            ns = {"t": lb.try_acquire, "r": lb.release, "p": POOL}
            cases.append(
                Case(
                    f"{size:,} instances: agentstat {strategy.value}, try_acquire+release",
                    stmt_runner("r(t(p))", ns),
                    base,
                )
            )
        measure(SECTION, cases, mode, report)
        for row in setup:
            report.add(row)
    if LIMIT_SIZE not in mode.balancer_sizes:
        return
    for strategy in Strategy:
        value = report.find(
            SECTION, f"{LIMIT_SIZE:,} instances: agentstat {strategy.value}, with acquire()"
        ).value
        baseline = report.find(
            SECTION, f"{LIMIT_SIZE:,} instances: list-based O(n) {LIST_FOR[strategy]}"
        )
        report.target(
            SECTION,
            f"{strategy.value} acquire+release at {LIMIT_SIZE:,}",
            f"{value:,.0f} ns",
            f"≤ {LIMIT_NS:,.0f} ns",
            value <= LIMIT_NS,
            f"list-based O(n) {LIST_FOR[strategy]}: {baseline.value / 1e3:,.1f} µs",
        )
