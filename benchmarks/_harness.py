"""Timing, results and the printed table, shared by every section.

Why this shape: on a small shared machine a single timing is noise, so every case is
run in several rounds and reported as the median with its interquartile range. The
cases of one comparison are measured *interleaved* (round 1 of every case, then round
2, ...), so a slow spell of the machine hits the baseline and the candidate alike, and
every ratio divides two numbers from the same run. Nothing is subtracted: loop and
key-iteration costs stay in every number and are shown as rows of their own where they
matter, and every "added cost" is printed as the difference it is.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

#: ``run(n)`` performs ``n`` operations and returns the seconds they took.
Runner = Callable[[int], float]


@dataclass(frozen=True)
class Mode:
    """How hard to measure: rounds per case, wall time per round and the big sizes."""

    name: str
    rounds: int
    round_seconds: float
    memory_calls: tuple[int, ...]
    distinct_names: int
    cache_sizes: tuple[int, ...]
    balancer_sizes: tuple[int, ...]
    scrape_series: tuple[int, ...]
    accuracy_samples: int


QUICK = Mode(
    name="quick",
    rounds=7,
    round_seconds=0.02,
    memory_calls=(1_000_000,),
    distinct_names=100_000,
    cache_sizes=(1_000, 100_000),
    balancer_sizes=(10, 1_000, 10_000),
    scrape_series=(100, 1_000),
    accuracy_samples=100_000,
)
FULL = Mode(
    name="full",
    rounds=15,
    round_seconds=0.05,
    memory_calls=(1_000_000, 10_000_000),
    distinct_names=100_000,
    cache_sizes=(1_000, 100_000),
    balancer_sizes=(10, 1_000, 10_000),
    scrape_series=(100, 1_000),
    accuracy_samples=1_000_000,
)
SMOKE = Mode(
    name="smoke",
    rounds=2,
    round_seconds=0.0005,
    memory_calls=(2_000,),
    distinct_names=500,
    cache_sizes=(100, 1_000),
    balancer_sizes=(10, 100),
    scrape_series=(10,),
    accuracy_samples=2_000,
)


def stmt_runner(stmt: str, namespace: dict[str, Any], setup: str = "pass") -> Runner:
    """A runner for a statement, executed by timeit's own loop (about 10 ns per pass)."""
    timer = timeit.Timer(stmt, setup=setup, globals=namespace)
    return timer.timeit


def loop_runner(step: Callable[[], Any]) -> Runner:
    """A runner calling ``step()`` n times (for work a statement string cannot hold)."""

    def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            step()
        return perf_counter() - start

    return drive


def async_loop_runner(loop: asyncio.AbstractEventLoop, step: Callable[[], Any]) -> Runner:
    """A runner awaiting ``step()`` n times on ``loop``."""

    async def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            await step()
        return perf_counter() - start

    return lambda n: loop.run_until_complete(drive(n))


@dataclass(frozen=True)
class Case:
    """One operation to time; ``baseline`` names the case its ratio divides by."""

    name: str
    run: Runner
    baseline: str | None = None


@dataclass
class Row:
    """One line of the table. ``value`` is the median; ``low``/``high`` its spread."""

    section: str
    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    baseline: str | None = None
    ratio: float | None = None
    ops_per_round: int | None = None
    rounds: int | None = None
    note: str = ""


@dataclass
class Target:
    """One target from the issues, with the number measured against it."""

    section: str
    name: str
    measured: str
    limit: str
    met: bool
    detail: str = ""


@dataclass
class Report:
    """Everything one run produced; printed as a table and optionally written as JSON."""

    mode: Mode
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def find(self, section: str, name: str) -> Row:
        for row in self.rows:
            if row.section == section and row.name == name:
                return row
        raise KeyError(f"no row {name!r} in section {section!r}")

    def target(
        self, section: str, name: str, measured: str, limit: str, met: bool, detail: str = ""
    ) -> None:
        self.targets.append(Target(section, name, measured, limit, met, detail))


def _calibrate(run: Runner, seconds: float) -> int:
    """Operations per round so that one round takes about ``seconds``."""
    n = 1
    while True:
        elapsed = run(n)
        if elapsed >= seconds / 5 or n >= 1 << 26:
            break
        n *= 10 if elapsed < seconds / 50 else 2
    return max(1, round(n * seconds / max(elapsed, 1e-9)))


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def measure(section: str, cases: Iterable[Case], mode: Mode, report: Report) -> list[Row]:
    """Time ``cases`` interleaved over ``mode.rounds`` rounds; add one row per case."""
    cases = list(cases)
    sizes = [_calibrate(case.run, mode.round_seconds) for case in cases]
    samples: list[list[float]] = [[] for _ in cases]
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection in one round is not the op's cost
    try:
        for _ in range(mode.rounds):
            for i, case in enumerate(cases):
                samples[i].append(case.run(sizes[i]) * 1e9 / sizes[i])
    finally:
        if enabled:
            gc.enable()
    rows = []
    by_name: dict[str, float] = {}
    for case, n, values in zip(cases, sizes, samples, strict=True):
        q1, median, q3 = _quartiles(values)
        by_name[case.name] = median
        rows.append(
            Row(section, case.name, median, "ns/op", q1, q3, case.baseline, None, n, mode.rounds)
        )
    for row in rows:
        if row.baseline is not None:
            base = by_name.get(row.baseline)
            if base is None:
                base = report.find(section, row.baseline).value
            row.ratio = row.value / base
        report.add(row)
    return rows


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (Linux).

    Elsewhere, the peak RSS from ``getrusage``: it cannot shrink, but growth still shows.
    """
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------ output


def machine() -> dict[str, str]:
    """What the numbers were measured on: cores, CPU model, Python."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "ns/op":
        if value >= 1e6:
            return f"{value / 1e6:,.2f} ms"
        if value >= 1e4:
            return f"{value / 1e3:,.1f} µs"
        return f"{value:,.0f} ns"
    if unit == "ms":
        return f"{value:,.2f} ms"
    if unit == "MiB":
        return f"{value:,.2f} MiB"
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit == "s":
        return f"{value:.4f} s"
    if unit == "%":
        return f"{value:.3f} %"
    if unit == "objects":
        return f"{value:,.0f} objects"
    return f"{value:,.4g} {unit}"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}×" if ratio < 100 else f"{ratio:,.0f}×"


def _table(headers: list[str], lines: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(line) for line in lines)])


def render_section(report: Report, section: str) -> str:
    """The rows of one section as an aligned text table."""
    rows = [r for r in report.rows if r.section == section]
    if not rows:
        return f"[{section}] (no rows)"
    lines = []
    for r in rows:
        spread = ""
        if r.low is not None and r.high is not None:
            spread = f"{_fmt(r.low, r.unit)} – {_fmt(r.high, r.unit)}"
        lines.append(
            [r.name, _fmt(r.value, r.unit), spread, _ratio(r.ratio), r.baseline or "", r.note]
        )
    headers = ["operation", "median", "IQR (q1 – q3)", "ratio", "baseline (same run)", "note"]
    if all(r.low is None for r in rows):
        headers[1] = "value"
    return f"[{section}]\n" + _table(headers, lines, right={1, 2, 3})


def render_targets(report: Report) -> str:
    """Every target with its measured value and met/missed (informational only)."""
    if not report.targets:
        return "[targets] (none evaluated)"
    lines = [
        [t.section, t.name, t.measured, t.limit, "met" if t.met else "MISSED", t.detail]
        for t in report.targets
    ]
    headers = ["section", "target", "measured", "limit", "status", "detail"]
    return "[targets] informational, never asserted\n" + _table(headers, lines, right=set())


def write_json(report: Report, path: Path) -> None:
    """The whole run as JSON, for comparison across commits."""
    data = {
        "mode": report.mode.name,
        "machine": machine(),
        "argv": sys.argv,
        "rows": [asdict(r) for r in report.rows],
        "targets": [asdict(t) for t in report.targets],
        "errors": report.errors,
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
