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
from agentstat.balancer import AgentInstance, BalancerError, LoadBalancer, Strategy
from agentstat.caching import MISSING, Cache, TieredCache
from agentstat.decorators import agent, tool
from agentstat.exporter import DEFAULT_HOST, DEFAULT_PORT, start_metrics_server
from agentstat.retry import retry

# ------------------------------------------------------------------------ the fleet

AGENTS = ("planner", "researcher", "writer", "reviewer")
TOOLS = ("web_search", "calculator", "code_exec")
CACHE = "llm-responses"
TIERED_CACHE = "embeddings"
TIERS = ("hot", "warm", "cold")
POOL = "researcher"
INSTANCES = tuple(f"{POOL}-{i}" for i in range(1, 5))
INSTANCE_CAPACITY = 10
MAX_IN_FLIGHT = 5000  # bounds memory if a fault makes tasks pile up

FAULTS = {
    "slow-agent": "writer takes 1.2-4 s (P95 above the 1 s alert)",
    "failing-agent": "reviewer fails ~25 % of calls",
    "failing-tool": "code_exec fails ~30 % of calls",
    "cold-cache": "llm-responses sees keys it never saw before (hit rate near 0)",
    "hot-instance": "researcher-1 slows down 20x and fills up (load above 80 %)",
    "unhealthy-pool": "every researcher instance fails its health probe",
    "saturated-pool": "every researcher instance slows down 20x: callers wait, then are rejected",
    "flaky-search": "web_search fails ~60 % of attempts: retries, and give-ups after 3",
}
SLOW_AGENT, FAILING_AGENT, FAILING_TOOL, FLAKY_TOOL = (
    "writer",
    "reviewer",
    "code_exec",
    "web_search",
)
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


class ZipfKeys:
    """Keys drawn with probability ~ 1/rank^s, like real prompt and document traffic."""

    def __init__(self, prefix: str, count: int, s: float, rng: random.Random) -> None:
        self.keys = [f"{prefix}-{rank}" for rank in range(count)]
        weights = [1.0 / (rank + 1) ** s for rank in range(count)]
        total = 0.0
        self.cumulative = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.rng = rng

    def draw(self) -> str:
        return self.rng.choices(self.keys, cum_weights=self.cumulative)[0]

    def most_popular_last(self, limit: int) -> list[str]:
        """The ``limit`` most popular keys, least popular first (for warming caches)."""
        return list(reversed(self.keys[:limit]))


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
        if "flaky-search" in self.faults:
            self.profiles[FLAKY_TOOL] = Profile(0.050, 0.60, 0.60)
        self.tasks_done = 0
        self._build_agents()
        self._build_caches()
        self._build_pool()

    def _build_caches(self) -> None:
        self.prompts = ZipfKeys("prompt", 5000, 1.1, self.rng)
        self.documents = ZipfKeys("doc", 4000, 1.2, self.rng)
        self.responses: Cache[str, str] = Cache(maxsize=2000, ttl=600, name=CACHE)
        self.embeddings: TieredCache[str, tuple[float, ...]] = TieredCache(name=TIERED_CACHE)
        # A service that has been up a while has warm caches; start like one.
        for key in self.prompts.most_popular_last(2000):
            self.responses.put(key, "cached answer")
        for key in self.documents.most_popular_last(2600):
            self.embeddings.put(key, (0.0,))

    def _build_pool(self) -> None:
        unhealthy = "unhealthy-pool" in self.faults

        def probe(instance: AgentInstance) -> bool:
            return not unhealthy

        self.balancer = LoadBalancer(
            Strategy.ROUND_ROBIN, probe=probe, probe_interval=1.0, default_timeout=2.0
        )
        for instance_id in INSTANCES:
            self.balancer.register(AgentInstance(instance_id, POOL, capacity=INSTANCE_CAPACITY))
        if unhealthy:
            self.balancer.check_health()

    async def _work(
        self, name: str, errors: tuple[type[Exception], ...], slowdown: float = 1.0
    ) -> str:
        profile = self.profiles[name]
        await asyncio.sleep(profile.latency(self.rng) * slowdown)
        if self.rng.random() < profile.failure_rate:
            raise self.rng.choice(errors)(f"simulated {name} failure")
        return name

    def _build_agents(self) -> None:
        llm_errors = (RateLimitError, TimeoutError)

        @agent("planner")
        async def plan() -> str:
            return await self._work("planner", llm_errors)

        @agent("researcher")
        async def research(instance: AgentInstance) -> str:
            hot = "saturated-pool" in self.faults or (
                instance.id == HOT_INSTANCE and "hot-instance" in self.faults
            )
            return await self._work("researcher", llm_errors, 20.0 if hot else 1.0)

        @agent("writer")
        async def write() -> str:
            return await self._work("writer", llm_errors)

        @agent("reviewer")
        async def review() -> str:
            return await self._work("reviewer", (ValueError, *llm_errors))

        # Transient search failures are retried (and counted) before the task gives up.
        @retry(on=(TimeoutError, ConnectionError), attempts=3, initial=0.02, target="web_search")
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
            await self._plan()
            await self._embed()
            await self.web_search()
            if self.rng.random() < 0.5:
                await self.calculator()
            if self.rng.random() < 0.4:
                await self.code_exec()
            with contextlib.suppress(BalancerError):
                async with self.balancer.acquire(POOL) as instance:
                    await self.research(instance)
            await self.write()
            await self.review()
        self.tasks_done += 1

    async def _plan(self) -> None:
        """Planning goes through the LLM response cache: only misses call the planner."""
        if "cold-cache" in self.faults:
            key = f"prompt-new-{self.rng.getrandbits(48)}"
        else:
            key = self.prompts.draw()
        if self.responses.get(key, MISSING) is MISSING:
            self.responses.put(key, await self.plan())

    async def _embed(self) -> None:
        key = self.documents.draw()
        if self.embeddings.get(key, MISSING) is MISSING:
            await asyncio.sleep(0.005)
            self.embeddings.put(key, (0.0,))

    async def run(self, rate: float, stop: asyncio.Event) -> None:
        """Start tasks as a Poisson stream of ``rate`` per second (open loop: a slow
        agent does not slow the arrivals, as with real users), until ``stop``."""
        if self.balancer.probe is not None:
            self.balancer.start_health_checks()
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if len(in_flight) < MAX_IN_FLIGHT:
                    task = asyncio.create_task(self.task())
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(self.rng.expovariate(rate))
        finally:
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            self.balancer.close()


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
    """Prints P50/P95/P99 and success rate per agent and tool over the last interval,
    then cache hit rates and instance loads."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._previous: dict[tuple[str, tuple], HistogramSnapshot] = {}
        self._cache_previous: dict[str, tuple[int, int]] = {}

    def render(self, elapsed: float) -> str:
        return "\n".join([self._calls(elapsed), self._resources()])

    def _hit_rate(self, label: str, hits: int, misses: int) -> str:
        before_hits, before_misses = self._cache_previous.get(label, (0, 0))
        self._cache_previous[label] = (hits, misses)
        hits, misses = hits - before_hits, misses - before_misses
        rate = 100.0 * hits / (hits + misses) if hits + misses else math.nan
        flag = " !" if rate < semconv.CACHE_HIT_RATE_TARGET * 100 else ""
        return f"{label} {rate:5.1f}%{flag}"

    def _resources(self) -> str:
        fleet = self.fleet
        caches = [self._hit_rate(CACHE, fleet.responses.hits, fleet.responses.misses)]
        caches.append(self._hit_rate(TIERED_CACHE, fleet.embeddings.hits, fleet.embeddings.misses))
        loads = []
        for instance in fleet.balancer.instances(POOL):
            share = 100.0 * instance.current_load / instance.max_capacity
            mark = "" if instance.is_healthy else " (down)"
            loads.append(f"{instance.id} {share:3.0f}%{mark}")
        return f"   caches: {'  '.join(caches)}\n   load:   {'  '.join(loads)}"

    def _calls(self, elapsed: float) -> str:
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
            f"-- last {elapsed:.1f}s",
            f"   {'':6} {'name':12} {'calls/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'success':>8}",
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
                f"   {kind:6} {name:12} {total / max(elapsed, 1e-9):8.1f}"
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
    rate: float,
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
    table = Summary(fleet)
    runner = asyncio.create_task(fleet.run(rate, stop))
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
    "--rate",
    default=40.0,
    show_default=True,
    type=click.FloatRange(0.1, 2000),
    help="Tasks started per second (each calls several agents and tools).",
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
    rate: float,
    interval: float,
    no_summary: bool,
) -> None:
    """Run a simulated agent fleet and serve its metrics on /metrics."""
    try:
        asyncio.run(_main(host, port, duration, faults, seed, rate, interval, not no_summary))
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        sys.exit(130)
