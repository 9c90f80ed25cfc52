"""The user's own seed-shaped cache and balancer classes, measured with no code change:
the real ``opentelemetry-instrument`` in a subprocess, counts read from /metrics."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agentstat import semconv
from tests.helpers import clean_env, free_port, run_instrumented_app

CACHE_MODULE = """
import time


class LRUCache:
    '''get() returns the value or None; put() drops the oldest key when full.'''

    def __init__(self, max_size=100, default_ttl=300):
        self.max_size = max_size
        self.default_ttl = default_ttl
        self.cache = {}  # key -> (value, expires at)

    def get(self, key):
        item = self.cache.get(key)
        if item is None:
            return None
        value, expires = item
        if time.monotonic() > expires:
            del self.cache[key]
            return None
        self.cache[key] = self.cache.pop(key)  # most recently used goes last
        return value

    def put(self, key, value, ttl=None):
        if key in self.cache:
            del self.cache[key]
        elif len(self.cache) >= self.max_size:
            del self.cache[next(iter(self.cache))]
        self.cache[key] = (value, time.monotonic() + (ttl or self.default_ttl))


class TieredCache:
    '''Three LRUCache tiers; a hit below the top is copied one tier up.'''

    def __init__(self):
        self.hot = LRUCache(2, 60)
        self.warm = LRUCache(4, 600)
        self.cold = LRUCache(8, 3600)

    def get(self, key):
        value = self.hot.get(key)
        if value is not None:
            return value
        value = self.warm.get(key)
        if value is not None:
            self.hot.put(key, value)
            return value
        value = self.cold.get(key)
        if value is not None:
            self.warm.put(key, value)
        return value


class NotACache:
    def store(self, key, value):
        pass
"""

LB_MODULE = """
from dataclasses import dataclass


@dataclass
class AgentInstance:
    id: str
    agent_type: str
    current_load: int = 0
    max_capacity: int = 2
    is_healthy: bool = True


class LoadBalancer:
    '''acquire() hands out the least loaded healthy instance with room, else None.'''

    def __init__(self):
        self.instances = {}

    def register(self, instance):
        self.instances.setdefault(instance.agent_type, []).append(instance)

    def acquire(self, agent_type):
        room = [
            i for i in self.instances.get(agent_type, [])
            if i.is_healthy and i.current_load < i.max_capacity
        ]
        if not room:
            return None
        chosen = min(room, key=lambda i: i.current_load / i.max_capacity)
        chosen.current_load += 1
        return chosen

    def release(self, instance):
        instance.current_load = max(0, instance.current_load - 1)
"""

APP = """
import pathlib
import sys
import time

from app_cache import LRUCache, TieredCache
from app_lb import AgentInstance, LoadBalancer

cache = LRUCache(max_size=3)
cache.put("a", 1)
cache.put("b", 0)  # a falsy value is still a hit for this shape: only None is a miss
for key in ["a", "a", "b", "x", "y"]:
    cache.get(key)

tiered = TieredCache()
tiered.cold.put("k", "v")
for key in ["k", "k", "k", "nope"]:
    tiered.get(key)

lb = LoadBalancer()
lb.register(AgentInstance("w-1", "writer"))
lb.register(AgentInstance("w-2", "writer"))
held = [lb.acquire("writer") for _ in range(5)]
lb.release(held[0])
held[1].is_healthy = False

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app_cache.py").write_text(textwrap.dedent(CACHE_MODULE))
    (tmp_path / "app_lb.py").write_text(textwrap.dedent(LB_MODULE))
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


def scrape(app_dir: Path, **settings: str) -> dict[tuple[str, frozenset], float]:
    """Run app.py under opentelemetry-instrument; every sample of /metrics once it is done."""
    port = free_port()
    env = clean_env(
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        **settings,
    )
    samples, _ = run_instrumented_app(app_dir, env, port)
    return samples


def key(spec: semconv.MetricSpec, **attributes: str) -> tuple[str, frozenset]:
    """The /metrics sample of ``spec`` with these attributes (OTel keys, dots as __)."""
    labels = {spec.label(k.replace("__", ".")): v for k, v in attributes.items()}
    return spec.prometheus_name, frozenset(labels.items())


def lookups(name: str, tier: str, result: str) -> tuple[str, frozenset]:
    attributes = {"agentstat__cache__name": name, "agentstat__cache__result": result}
    if tier:
        attributes["agentstat__cache__tier"] = tier
    return key(semconv.CACHE_LOOKUPS, **attributes)


def test_seed_shaped_classes_get_exact_metrics_with_no_code_change(app_dir: Path) -> None:
    """The env settings alone give exact cache, per-tier and balancer counts on /metrics."""
    samples = scrape(
        app_dir,
        AGENTSTAT_CACHES="app_cache:LRUCache,app_cache:TieredCache",
        AGENTSTAT_BALANCERS="app_lb:LoadBalancer",
    )
    expected_lookups = {
        ("LRUCache", "", "hit"): 3,
        ("LRUCache", "", "miss"): 2,  # tier lookups are not counted again under LRUCache
        ("TieredCache", "hot", "hit"): 1,
        ("TieredCache", "hot", "miss"): 3,
        ("TieredCache", "warm", "hit"): 1,
        ("TieredCache", "warm", "miss"): 2,
        ("TieredCache", "cold", "hit"): 1,
        ("TieredCache", "cold", "miss"): 1,
        ("TieredCache", "all", "hit"): 3,
        ("TieredCache", "all", "miss"): 1,
    }
    found = {labels: samples.get(lookups(*labels)) for labels in expected_lookups}
    assert found == expected_lookups
    name = "agentstat__cache__name"
    assert samples[key(semconv.CACHE_SIZE, **{name: "LRUCache"})] == 2
    assert samples[key(semconv.CACHE_CAPACITY, **{name: "LRUCache"})] == 3
    for tier, size, capacity in (("hot", 1, 2), ("warm", 1, 4), ("cold", 1, 8)):
        labels = {name: "TieredCache", "agentstat__cache__tier": tier}
        assert samples[key(semconv.CACHE_SIZE, **labels)] == size
        assert samples[key(semconv.CACHE_CAPACITY, **labels)] == capacity

    def instance(spec: semconv.MetricSpec, ident: str) -> float:
        labels = {"agentstat__balancer__pool": "writer", "agentstat__balancer__instance__id": ident}
        return samples[key(spec, **labels)]

    assert instance(semconv.BALANCER_SELECTIONS, "w-1") == 2
    assert instance(semconv.BALANCER_SELECTIONS, "w-2") == 2
    assert samples[key(semconv.BALANCER_REJECTIONS, agentstat__balancer__pool="writer")] == 1
    assert (instance(semconv.INSTANCE_LOAD, "w-1"), instance(semconv.INSTANCE_LOAD, "w-2")) == (
        1,
        2,
    )
    assert instance(semconv.INSTANCE_CAPACITY, "w-1") == 2
    assert instance(semconv.INSTANCE_HEALTHY, "w-1") == 1
    assert instance(semconv.INSTANCE_HEALTHY, "w-2") == 0


def test_a_class_that_does_not_fit_is_reported_and_skipped(app_dir: Path) -> None:
    """A configured class without get() is logged by entry and skipped; others still count."""
    samples = scrape(
        app_dir,
        AGENTSTAT_CACHES="app_cache:NotACache,app_cache:LRUCache=answers",
    )
    log = (app_dir / "app.log").read_text()
    assert "skipping cache entry 'app_cache:NotACache': NotACache has no get(key) method" in log
    # TieredCache is not configured here, so its tiers count as plain LRUCache lookups:
    # 3 hits + 2 misses direct, 3 hits + 6 misses through the tiers
    assert samples[lookups("answers", "", "hit")] == 6
    assert samples[lookups("answers", "", "miss")] == 8
