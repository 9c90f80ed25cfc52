"""``agentstat demo``: a simulated agent fleet that serves real metrics.

Each simulated task plans, looks up cached LLM responses and embeddings, calls tools,
sends research to a balanced pool of agent instances, writes and reviews. Latencies are
lognormal (a realistic long tail), failures are rare and typed. Everything is
instrumented through the public API (``@agent``/``@tool``, ``Cache``, ``TieredCache``,
``LoadBalancer``, ``start_metrics_server``), so the page at ``/metrics`` is exactly what
a user's own fleet would produce.

Faults (``--fault``, repeatable) break one target each, so dashboards and alerts have
something to show: see :data:`FAULTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import click

from agentstat import semconv
from agentstat.aggregation import STORE, HistogramSnapshot
from agentstat.decorators import agent, tool
from agentstat.exporter import DEFAULT_HOST, DEFAULT_PORT, start_metrics_server

# ------------------------------------------------------------------------ the fleet

AGENTS = ("planner", "researcher", "writer", "reviewer")
TOOLS = ("web_search", "calculator", "code_exec")
CACHE = "llm-responses"
TIERED_CACHE = "embeddings"
TIERS = ("hot", "warm", "cold")
POOL = "researcher"
INSTANCES = tuple(f"{POOL}-{i}" for i in range(1, 5))
INSTANCE_CAPACITY = 10

FAULTS = {
    "slow-agent": "writer takes 1.2-4 s (P95 above the 1 s alert)",
    "failing-agent": "reviewer fails ~25 % of calls",
    "failing-tool": "code_exec fails ~30 % of calls",
    "cold-cache": "llm-responses sees keys it never saw before (hit rate near 0)",
    "hot-instance": "researcher-1 slows down 20x and fills up (load above 80 %)",
    "unhealthy-pool": "every researcher instance fails its health probe",
}
SLOW_AGENT, FAILING_AGENT, FAILING_TOOL = "writer", "reviewer", "code_exec"
HOT_INSTANCE = INSTANCES[0]


class RateLimitError(Exception):
    """A simulated upstream LLM rate limit."""


class ToolError(RuntimeError):
    """A simulated tool crash."""


@dataclass(frozen=True)
class Profile:
    """Lognormal latency (median seconds, sigma) and a failure rate."""

    median: float
    sigma: float
    failure_rate: float

    def latency(self, rng: random.Random) -> float:
        return self.median * math.exp(rng.gauss(0.0, self.sigma))


HEALTHY = {
    "planner": Profile(0.040, 0.45, 0.001),
    "researcher": Profile(0.090, 0.50, 0.002),
    "writer": Profile(0.120, 0.45, 0.001),
    "reviewer": Profile(0.060, 0.40, 0.001),
    "web_search": Profile(0.050, 0.60, 0.002),
    "calculator": Profile(0.004, 0.30, 0.0),
    "code_exec": Profile(0.080, 0.50, 0.002),
}


class Fleet:
    """The simulated workload; one instance per ``agentstat demo`` process."""

    def __init__(self, faults: Iterable[str], seed: int | None = None) -> None:
        self.faults = frozenset(faults)
        unknown = self.faults - FAULTS.keys()
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        self.rng = random.Random(seed)
        self.profiles = dict(HEALTHY)
        if "slow-agent" in self.faults:
            self.profiles[SLOW_AGENT] = Profile(2.0, 0.35, 0.001)
        if "failing-agent" in self.faults:
            self.profiles[FAILING_AGENT] = Profile(0.060, 0.40, 0.25)
        if "failing-tool" in self.faults:
            self.profiles[FAILING_TOOL] = Profile(0.080, 0.50, 0.30)
        self.tasks_done = 0
        self._build_agents()

    async def _work(self, name: str, errors: tuple[type[Exception], ...]) -> str:
        profile = self.profiles[name]
        await asyncio.sleep(profile.latency(self.rng))
        if self.rng.random() < profile.failure_rate:
            raise self.rng.choice(errors)(f"simulated {name} failure")
        return name

    def _build_agents(self) -> None:
        llm_errors = (RateLimitError, TimeoutError)

        @agent("planner")
        async def plan() -> str:
            return await self._work("planner", llm_errors)

        @agent("researcher")
        async def research() -> str:
            return await self._work("researcher", llm_errors)

        @agent("writer")
        async def write() -> str:
            return await self._work("writer", llm_errors)

        @agent("reviewer")
        async def review() -> str:
            return await self._work("reviewer", (ValueError, *llm_errors))

        @tool("web_search")
        async def web_search() -> str:
            return await self._work("web_search", (TimeoutError, ConnectionError))

        @tool("calculator")
        async def calculator() -> str:
            return await self._work("calculator", (ZeroDivisionError,))

        @tool("code_exec")
        async def code_exec() -> str:
            return await self._work("code_exec", (ToolError, TimeoutError))

        self.plan, self.research, self.write, self.review = plan, research, write, review
        self.web_search, self.calculator, self.code_exec = web_search, calculator, code_exec

    async def task(self) -> None:
        """One user request through the fleet; failures end the task, as they would."""
        with contextlib.suppress(Exception):
            await self.plan()
            await self.web_search()
            if self.rng.random() < 0.5:
                await self.calculator()
            if self.rng.random() < 0.4:
                await self.code_exec()
            await self.research()
            await self.write()
            await self.review()
        self.tasks_done += 1

    async def run(self, concurrency: int, stop: asyncio.Event) -> None:
        async def user() -> None:
            while not stop.is_set():
                await self.task()

        users = [asyncio.create_task(user()) for _ in range(concurrency)]
        await stop.wait()
        for task in users:
            task.cancel()
        await asyncio.gather(*users, return_exceptions=True)


# ----------------------------------------------------------------------- the summary


def quantile(bounds: tuple[float, ...], counts: list[int], q: float) -> float:
    """Estimate a quantile from bucket counts as PromQL's ``histogram_quantile`` does
    (linear inside the bucket); the last finite bound when it falls in ``+Inf``."""
    total = sum(counts)
    if total == 0:
        return math.nan
    rank = q * total
    cumulative = 0
    for index, count in enumerate(counts):
        if cumulative + count >= rank and count > 0:
            if index == len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index > 0 else 0.0
            return lower + (bounds[index] - lower) * (rank - cumulative) / count
        cumulative += count
    return bounds[-1]


def _delta(now: HistogramSnapshot, before: HistogramSnapshot | None) -> list[int]:
    if before is None:
        return list(now.bucket_counts)
    return [a - b for a, b in zip(now.bucket_counts, before.bucket_counts, strict=True)]


class Summary:
    """Prints P50/P95/P99 and success rate per agent and tool over the last interval."""

    def __init__(self) -> None:
        self._previous: dict[tuple[str, tuple], HistogramSnapshot] = {}

    def render(self, elapsed: float) -> str:
        rows: dict[tuple[str, str], list[list[int]]] = {}
        errors: dict[tuple[str, str], int] = {}
        for spec, name_attr in (
            (semconv.AGENT_DURATION, semconv.GEN_AI_AGENT_NAME),
            (semconv.TOOL_DURATION, semconv.GEN_AI_TOOL_NAME),
        ):
            for snap in STORE.histogram(spec).snapshots():
                key = (spec.name, tuple(sorted(snap.attributes.items())))
                counts = _delta(snap, self._previous.get(key))
                self._previous[key] = snap
                row = (
                    "agent" if spec is semconv.AGENT_DURATION else "tool",
                    snap.attributes[name_attr],
                )
                etype = snap.attributes.get(semconv.ERROR_TYPE, "")
                if etype == semconv.ERROR_TYPE_CANCELLED:
                    continue
                rows.setdefault(row, []).append(counts)
                if etype:
                    errors[row] = errors.get(row, 0) + sum(counts)
        lines = [
            f"-- {elapsed:6.1f}s  {'':10} {'name':12} {'calls/s':>8} {'p50':>8} {'p95':>8}"
            f" {'p99':>8} {'success':>8}"
        ]
        for (kind, name), parts in sorted(rows.items()):
            merged = [sum(column) for column in zip(*parts, strict=True)]
            total = sum(merged)
            if total == 0:
                continue
            p50, p95, p99 = (
                quantile(semconv.DURATION_BUCKETS, merged, q) * 1000 for q in (0.5, 0.95, 0.99)
            )
            success = 100.0 * (total - errors.get((kind, name), 0)) / total
            flag = " !" if p95 > semconv.LATENCY_P95_TARGET_SECONDS * 1000 or success < 99 else ""
            lines.append(
                f"   {'':7}  {kind:10} {name:12} {total / max(elapsed, 1e-9):8.1f}"
                f" {p50:6.0f}ms {p95:6.0f}ms {p99:6.0f}ms {success:7.2f}%{flag}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- command


async def _main(
    host: str,
    port: int,
    duration: float,
    faults: tuple[str, ...],
    seed: int | None,
    concurrency: int,
    interval: float,
    summary: bool,
) -> None:
    fleet = Fleet(faults, seed)
    server = start_metrics_server(port=port, host=host, service_name="agentstat-demo")
    click.echo(f"agentstat demo: serving {server.url}  faults: {', '.join(faults) or 'none'}")
    click.echo("Ctrl-C stops." if duration <= 0 else f"Stops after {duration:g}s or on Ctrl-C.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if duration > 0:
        loop.call_later(duration, stop.set)
    table = Summary()
    runner = asyncio.create_task(fleet.run(concurrency, stop))
    started = last = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            now = time.monotonic()
            if summary:
                click.echo(table.render(now - last))
            last = now
    finally:
        stop.set()
        await runner
        server.shutdown()
    click.echo(
        f"agentstat demo: stopped after {time.monotonic() - started:.1f}s, {fleet.tasks_done} tasks"
    )


@click.command("demo")
@click.option(
    "--host", default=DEFAULT_HOST, show_default=True, help="Address to serve /metrics on."
)
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0: any free one)."
)
@click.option("--duration", default=0.0, type=float, help="Seconds to run; 0 runs until Ctrl-C.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(sorted(FAULTS)),
    help="Break one target (repeatable): " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
)
@click.option("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Simulated users working at once.",
)
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between summary lines.",
)
@click.option("--no-summary", is_flag=True, help="Do not print the live summary.")
def demo_command(
    host: str,
    port: int,
    duration: float,
    faults: tuple[str, ...],
    seed: int | None,
    concurrency: int,
    interval: float,
    no_summary: bool,
) -> None:
    """Run a simulated agent fleet and serve its metrics on /metrics."""
    try:
        asyncio.run(
            _main(host, port, duration, faults, seed, concurrency, interval, not no_summary)
        )
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        sys.exit(130)
