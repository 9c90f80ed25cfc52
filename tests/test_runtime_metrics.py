"""Runtime counts read back exactly through the producer and an OTel in-memory reader."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import agentstat.testing
from agentstat import MISSING, Cache, Tier, TieredCache
from agentstat._metrics import bridge
from agentstat.runtime.balancer import AgentInstance, LoadBalancer
from agentstat.runtime.retry import retry
from agentstat.semconv import (
    BALANCER_REJECTIONS,
    BALANCER_SELECTIONS,
    CACHE_CAPACITY,
    CACHE_EVICTIONS,
    CACHE_LOOKUPS,
    CACHE_NAME,
    CACHE_SIZE,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    INSTANCE_LOAD,
    OTHER,
    POOL_NAME,
    RETRY_ATTEMPTS,
    RETRY_GIVE_UPS,
    Instrument,
    MetricSpec,
)
from tests.metrics_util import points


@pytest.fixture
def meter(meter_provider: MeterProvider) -> Any:
    producer = bridge.attach(meter_provider)
    assert producer is not None
    yield
    producer.enabled = False


def values(reader: InMemoryMetricReader, spec: MetricSpec, **match: str) -> dict[tuple, float]:
    """{sorted attribute items: value} of ``spec`` for points whose attributes match."""
    found = {}
    for point in points(reader, spec):
        attributes = dict(point.attributes)
        wanted = {key.replace("__", "."): value for key, value in match.items()}
        if all(attributes.get(k) == v for k, v in wanted.items()):
            found[tuple(sorted(attributes.items()))] = point.value
    return found


def one(reader: InMemoryMetricReader, spec: MetricSpec, **attributes: str) -> float:
    """The value of the single point of ``spec`` with exactly these attributes."""
    key = tuple(sorted(attributes.items()))
    found = {k: v for k, v in values(reader, spec).items() if k == key}
    assert found, f"no {spec.name} point with {attributes}; have {values(reader, spec)}"
    return next(iter(found.values()))


def test_cache_counts_sizes_and_evictions_are_exported_exactly(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """Hits, misses, size/expiry evictions, size and capacity of a Cache, exactly."""
    clock = agentstat.testing.FakeClock(now=0.0)
    cache: Cache[int, int] = Cache(maxsize=3, name="rm-cache", clock=clock)
    for key in range(5):  # evicts 0 and 1
        cache.put(key, key)
    cache.put(9, 9, ttl=1)  # evicts 2: three size evictions
    for key in (3, 4, 3, 0, 1):  # 3 hits, 2 misses
        cache.get(key)
    clock.advance(2.0)
    cache.get(9)  # expired: a miss and an expiry
    name = {CACHE_NAME: "rm-cache"}
    assert one(reader, CACHE_LOOKUPS, **name, **{"agentstat.cache.result": "hit"}) == 3
    lookups = values(reader, CACHE_LOOKUPS)
    mine = {k: v for k, v in lookups.items() if ("agentstat.cache.name", "rm-cache") in k}
    assert sorted(mine.values()) == [3, 3]  # 3 hits, 3 misses
    evictions = {
        dict(k)["agentstat.cache.eviction.reason"]: v
        for k, v in values(reader, CACHE_EVICTIONS).items()
        if ("agentstat.cache.name", "rm-cache") in k
    }
    assert evictions == {"size": 3, "expired": 1}
    assert one(reader, CACHE_SIZE, **name) == 2
    assert one(reader, CACHE_CAPACITY, **name) == 3


def test_tiered_cache_reports_each_tier_and_the_whole(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """Per-tier lookups carry the tier name; the whole-cache outcome has tier="all"."""
    tiers: TieredCache[str, int] = TieredCache((Tier("hot", 1), Tier("cold", 4)), name="rm-tiered")
    tiers.put("a", 1)
    tiers.put("b", 2)  # a demoted to cold
    tiers.get("a")  # hot miss, cold hit, whole hit
    tiers.get("zzz", MISSING)  # misses everywhere
    base = {CACHE_NAME: "rm-tiered"}

    def lookups(tier: str, result: str) -> float:
        attributes = {**base, "agentstat.cache.tier": tier, "agentstat.cache.result": result}
        return one(reader, CACHE_LOOKUPS, **attributes)

    assert (lookups("hot", "hit"), lookups("hot", "miss")) == (0, 2)
    assert (lookups("cold", "hit"), lookups("cold", "miss")) == (1, 1)
    assert (lookups("all", "hit"), lookups("all", "miss")) == (1, 1)
    assert one(reader, CACHE_SIZE, **base, **{"agentstat.cache.tier": "hot"}) == 1
    assert one(reader, CACHE_CAPACITY, **base, **{"agentstat.cache.tier": "cold"}) == 4


def test_balancer_selections_rejections_and_instance_gauges(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """Selections per instance, rejections per pool, load/capacity/healthy per instance."""
    lb = LoadBalancer(strategy="round_robin")
    a = lb.register(AgentInstance("rm-a", "rm-pool", capacity=2))
    lb.register(AgentInstance("rm-b", "rm-pool", capacity=1))
    held = [lb.try_acquire("rm-pool") for _ in range(3)]
    assert lb.try_acquire("rm-pool") is None
    lb.eject("rm-pool", "rm-b")
    ids = {"agentstat.balancer.pool": "rm-pool"}
    assert (
        one(reader, BALANCER_SELECTIONS, **ids, **{"agentstat.balancer.instance.id": "rm-a"}) == 2
    )
    assert (
        one(reader, BALANCER_SELECTIONS, **ids, **{"agentstat.balancer.instance.id": "rm-b"}) == 1
    )
    assert one(reader, BALANCER_REJECTIONS, **ids) == 1
    b_ids = {**ids, "agentstat.balancer.instance.id": "rm-b"}
    a_ids = {**ids, "agentstat.balancer.instance.id": "rm-a"}
    assert (one(reader, INSTANCE_LOAD, **a_ids), one(reader, INSTANCE_LOAD, **b_ids)) == (2, 1)
    assert one(reader, INSTANCE_CAPACITY, **a_ids) == 2
    assert (one(reader, INSTANCE_HEALTHY, **a_ids), one(reader, INSTANCE_HEALTHY, **b_ids)) == (
        1,
        0,
    )
    for instance in held:
        assert instance is not None
        lb.release(instance)
    assert one(reader, INSTANCE_LOAD, **a_ids) == 0 and a.load == 0


def test_retry_attempts_and_give_ups_by_target_and_error_type(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """Each retry and each give-up is exported with its target and error.type."""

    @retry(on=TimeoutError, attempts=3, target="rm-retry", sleep=lambda s: None)
    def always_slow() -> None:
        raise TimeoutError

    for _ in range(2):
        with pytest.raises(TimeoutError):
            always_slow()
    labels = {"agentstat.retry.target": "rm-retry", "error.type": "TimeoutError"}
    assert one(reader, RETRY_ATTEMPTS, **labels) == 4
    assert one(reader, RETRY_GIVE_UPS, **labels) == 2


def test_counters_stay_monotonic_when_their_objects_die(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """A dead cache's counts are kept, and a new cache of that name adds to them."""
    cache: Cache[int, int] = Cache(name="rm-mortal")
    cache.put(1, 1)
    for _ in range(3):
        cache.get(1)
    hit = {CACHE_NAME: "rm-mortal", "agentstat.cache.result": "hit"}
    assert one(reader, CACHE_LOOKUPS, **hit) == 3
    del cache
    gc.collect()
    assert one(reader, CACHE_LOOKUPS, **hit) == 3
    assert not values(reader, CACHE_SIZE, agentstat__cache__name="rm-mortal")  # gauge gone
    again: Cache[int, int] = Cache(name="rm-mortal")
    again.put(1, 1)
    again.get(1)
    assert one(reader, CACHE_LOOKUPS, **hit) == 4


def test_disabled_producer_reports_nothing_and_attaching_again_resumes(
    reader: InMemoryMetricReader, meter_provider: MeterProvider
) -> None:
    """A disabled producer adds nothing; attaching the same provider again reports again."""
    producer = bridge.attach(meter_provider)
    assert producer is not None
    cache: Cache[int, int] = Cache(name="rm-stop")
    cache.get(1)
    assert values(reader, CACHE_LOOKUPS, agentstat__cache__name="rm-stop")
    producer.enabled = False
    assert not values(reader, CACHE_LOOKUPS, agentstat__cache__name="rm-stop")
    assert bridge.attach(meter_provider) is producer
    assert values(reader, CACHE_LOOKUPS, agentstat__cache__name="rm-stop")
    producer.enabled = False


def test_names_beyond_the_cap_become_other(
    reader: InMemoryMetricReader, meter: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, further cache names are reported as _OTHER, summed."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    agentstat.testing.reset()
    caches = [Cache[int, int](name=f"rm-cap-{i}") for i in range(4)]
    for cache in caches:
        cache.get(0)
    names = {dict(k).get(CACHE_NAME) for k in values(reader, CACHE_LOOKUPS)}
    assert {"rm-cap-0", "rm-cap-1", OTHER} <= names and "rm-cap-3" not in names
    other_miss = {CACHE_NAME: OTHER, "agentstat.cache.result": "miss"}
    assert one(reader, CACHE_LOOKUPS, **other_miss) >= 2


def test_pool_names_are_capped(
    reader: InMemoryMetricReader, meter: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool names past the cap are reported as _OTHER."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "1")
    agentstat.testing.reset()
    lb = LoadBalancer()
    for pool in ("rm-p1", "rm-p2"):
        lb.register(AgentInstance("x", pool, capacity=1))
        lb.try_acquire(pool)
        assert lb.try_acquire(pool) is None
    pools = {dict(k)[POOL_NAME] for k in values(reader, BALANCER_REJECTIONS)}
    assert "rm-p1" in pools and OTHER in pools and "rm-p2" not in pools


def test_primitives_guide_names_every_runtime_metric_as_on_the_page() -> None:
    """docs/primitives.md lists each runtime metric's Prometheus name, from the table."""
    from agentstat.semconv import ALL_METRICS, BALANCER_WAIT
    from tests.helpers import REPO

    guide = (REPO / "docs" / "primitives.md").read_text()
    runtime = tuple(s for s in ALL_METRICS if s.instrument is not Instrument.HISTOGRAM)
    specs = (*runtime, BALANCER_WAIT)
    assert [s.prometheus_name for s in specs if f"`{s.prometheus_name}`" not in guide] == []


def test_deregistered_instance_has_no_gauges_and_counts_once_when_registered_again(
    reader: InMemoryMetricReader, meter: None
) -> None:
    """After deregister only its selections are reported; registered again, gauges are single."""
    lb = LoadBalancer(strategy="round_robin")
    instance = lb.register(AgentInstance("rm-back", "rm-again", capacity=4))
    lb.release(lb.try_acquire("rm-again"))  # type: ignore[arg-type]
    ids = {"agentstat.balancer.pool": "rm-again", "agentstat.balancer.instance.id": "rm-back"}
    lb.deregister("rm-again", "rm-back")
    assert one(reader, BALANCER_SELECTIONS, **ids) == 1
    for spec in (INSTANCE_LOAD, INSTANCE_CAPACITY, INSTANCE_HEALTHY):
        assert not values(reader, spec, agentstat__balancer__pool="rm-again"), spec.name
    lb.register(instance)
    lb.try_acquire("rm-again")
    assert one(reader, BALANCER_SELECTIONS, **ids) == 2
    assert one(reader, INSTANCE_HEALTHY, **ids) == 1
    assert one(reader, INSTANCE_CAPACITY, **ids) == 4
    assert one(reader, INSTANCE_LOAD, **ids) == 1
