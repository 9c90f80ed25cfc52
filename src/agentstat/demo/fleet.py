"""The simulated agent fleet behind ``agentstat demo``.

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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from agentstat import (
    MISSING,
    AgentInstance,
    BalancerError,
    Cache,
    LoadBalancer,
    Strategy,
    TieredCache,
    agent,
    retry,
    tool,
)

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
        if errors and self.rng.random() < profile.failure_rate:
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

        # The writer streams its draft (time to first chunk: a fifth of its time).
        @agent("writer")
        async def write() -> AsyncIterator[str]:
            yield await self._work("writer", (), 0.2)
            yield await self._work("writer", llm_errors, 0.8)

        @agent("reviewer")
        async def review() -> str:
            return await self._work("reviewer", (ValueError, *llm_errors))

        # Transient search failures are retried (and counted) before the task gives up.
        @retry(on=(TimeoutError, ConnectionError), attempts=3, initial=0.02, target="web_search")
        @tool("web_search")
        async def web_search() -> str:
            return await self._work("web_search", (TimeoutError, ConnectionError))

        @tool("calculator")
        async def calculator() -> AsyncIterator[str]:
            yield await self._work("calculator", (), 0.5)
            yield await self._work("calculator", (ZeroDivisionError,), 0.5)

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
                async for _ in self.calculator():
                    pass
            if self.rng.random() < 0.4:
                await self.code_exec()
            with contextlib.suppress(BalancerError):
                async with self.balancer.acquire(POOL) as instance:
                    await self.research(instance)
            async for _ in self.write():
                pass
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
