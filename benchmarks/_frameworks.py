"""What the two framework sections (``frameworks``, ``frameworks_b``) share: row labels,
the meter provider integrations are switched on with, a runner that switches them on
only while it times, and the verdict on one framework's added cost.

Targets: the hooks of one run add ≤ 10 µs (median) and ≤ 1 % of the bare run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from benchmarks._harness import Report, Row, Runner

ADDED_LIMIT_NS = 10_000.0
SHARE_LIMIT = 0.01

BARE = "bare run"
ON = "run, agentstat integration on"
HOOKS_BARE = "one run's hook points, nothing attached"
HOOKS_ON = "one run's hook points, agentstat"
TOOL_BARE = "one tool call's hook point, nothing attached"
TOOL_ON = "one tool call's hook point, agentstat"

PROVIDER = MeterProvider(metric_readers=[InMemoryMetricReader()])


def instrumenting(*instrumentors: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(on, off)``: instrument every one of ``instrumentors`` on :data:`PROVIDER`, and
    undo it."""

    def on() -> None:
        for instrumentor in instrumentors:
            instrumentor.instrument(meter_provider=PROVIDER)

    def off() -> None:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()

    return on, off


def switched(on: Callable[[], Any], off: Callable[[], Any], body: Runner) -> Runner:
    """A runner that switches something on, times ``body(n)``, switches it off."""

    def run(n: int) -> float:
        on()
        try:
            return body(n)
        finally:
            off()

    return run


def judge(section: str, prefix: str, report: Report) -> None:
    """Add the derived rows and the target verdict for framework ``prefix``."""

    def value(name: str) -> float:
        return report.find(section, f"{prefix}: {name}").value

    bare_run = value(BARE)
    whole = value(ON) - bare_run
    added = value(HOOKS_ON) - value(HOOKS_BARE)
    tool = value(TOOL_ON) - value(TOOL_BARE)
    share = added / bare_run
    report.add(Row(section, f"{prefix}: added per run (hooks)", added, "ns/op"))
    report.add(Row(section, f"{prefix}: added per tool call (hooks)", tool, "ns/op"))
    report.add(Row(section, f"{prefix}: whole-run difference", whole, "ns/op", note="noise-bound"))
    report.target(
        section,
        f"{prefix}: added cost per run",
        f"{added / 1e3:.2f} µs = {share * 100:.3f} % of a {bare_run / 1e6:.2f} ms run",
        "≤ 10 µs and ≤ 1 %",
        added <= ADDED_LIMIT_NS and share <= SHARE_LIMIT,
        f"+{tool / 1e3:.2f} µs per tool call; whole runs differ by {whole / 1e3:+.0f} µs",
    )
