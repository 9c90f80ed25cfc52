"""patch_cache_class / patch_balancer_class on duck-typed classes written here."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from typing import Any

import pytest
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation, unwrap

import agentstat.testing
from agentstat import Cache
from agentstat.errors import TargetError
from agentstat.instrumentation import user_caches
from agentstat.instrumentation.user_balancers import patch_balancer_class
from agentstat.instrumentation.user_caches import patch_cache_class
from agentstat.semconv import (
    BALANCER_REJECTIONS,
    BALANCER_SELECTIONS,
    CACHE_CAPACITY,
    CACHE_LOOKUPS,
    CACHE_SIZE,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    INSTANCE_LOAD,
)

# ----------------------------------------------------------- the user's own classes


class DictCache:
    """get() -> value or None; put() stores, dropping the oldest key when full."""

    def __init__(self, max_size: int = 3) -> None:
        self.max_size = max_size
        self.cache: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.cache.get(key)

    def put(self, key: Any, value: Any, ttl: float | None = None) -> None:
        if key not in self.cache and len(self.cache) >= self.max_size:
            del self.cache[next(iter(self.cache))]
        self.cache[key] = value


class ThreeTier:
    """Tiers as attributes; a lower-tier hit is copied up (no put)."""

    def __init__(self) -> None:
        self.hot = DictCache(1)
        self.warm = DictCache(2)
        self.cold = DictCache(4)
        self.label = "not a tier"

    def get(self, key: Any) -> Any:
        for upper, tier in ((None, self.hot), (self.hot, self.warm), (self.warm, self.cold)):
            value = tier.get(key)
            if value is not None:
                if upper is not None:
                    upper.put(key, value)
                return value
        return None


class Replica:
    def __init__(self, id: str, agent_type: str, max_capacity: int = 2) -> None:
        self.id = id
        self.agent_type = agent_type
        self.current_load = 0
        self.max_capacity = max_capacity
        self.is_healthy = True


class FirstFree:
    """acquire(agent_type) -> instance or None; release(instance)."""

    def __init__(self) -> None:
        self.pools: dict[str, list[Replica]] = {}

    def register(self, replica: Replica) -> None:
        self.pools.setdefault(replica.agent_type, []).append(replica)

    def acquire(self, agent_type: str) -> Replica | None:
        for replica in self.pools.get(agent_type, []):
            if replica.is_healthy and replica.current_load < replica.max_capacity:
                replica.current_load += 1
                return replica
        return None

    def release(self, replica: Replica) -> None:
        replica.current_load -= 1


@pytest.fixture
def patched() -> Iterator[list[tuple[object, str]]]:
    pairs: list[tuple[object, str]] = []
    yield pairs
    for owner, attribute in reversed(pairs):
        unwrap(owner, attribute)
    # a lazily wrapped tier class unwraps itself on its next call outside a tiered get
    DictCache().get("x")
    assert not isinstance(DictCache.__dict__["get"], wrapt.FunctionWrapper)


def lookups(name: str) -> dict[tuple[str, str], float]:
    """{(tier, result): count} of cache ``name``."""
    return {
        (tier, result): value
        for (cache, tier, result), value in agentstat.testing.series(CACHE_LOOKUPS).items()
        if cache == name
    }


# --------------------------------------------------------------------------- caches


def test_cache_class_counts_hits_and_misses_under_its_name(patched: list) -> None:
    """None from get() is a miss, anything else a hit, counted under the configured name."""
    patched += patch_cache_class(DictCache, "cp-plain")
    cache = DictCache()
    cache.put("k", 0)
    for key in ("k", "k", "absent"):
        cache.get(key)
    assert lookups("cp-plain") == {("", "hit"): 2, ("", "miss"): 1}


def test_tiered_class_counts_each_tier_by_attribute_name(patched: list) -> None:
    """Only the tiered class is configured: tiers are found and labelled hot/warm/cold."""
    patched += patch_cache_class(ThreeTier, "cp-tiered")
    tiered = ThreeTier()
    tiered.cold.put("k", "v")
    assert tiered.get("k") == "v"  # hot miss, warm miss, cold hit (then copied to warm)
    assert tiered.get("k") == "v"  # hot miss, warm hit
    assert tiered.get("none") is None  # misses in every tier
    assert lookups("cp-tiered") == {
        ("hot", "miss"): 3,
        ("warm", "miss"): 2,
        ("warm", "hit"): 1,
        ("cold", "hit"): 1,
        ("cold", "miss"): 1,
        ("all", "hit"): 2,
        ("all", "miss"): 1,
    }


def test_tier_lookups_are_not_double_counted_when_the_tier_class_is_configured(
    patched: list,
) -> None:
    """A configured cache class used as a tier counts as that tier, not under its own name."""
    patched += patch_cache_class(DictCache, "cp-tier-class")
    patched += patch_cache_class(ThreeTier, "cp-tiered-2")
    tiered = ThreeTier()
    tiered.get("x")
    standalone = DictCache()
    standalone.get("x")
    assert lookups("cp-tier-class") == {("", "miss"): 1}
    assert lookups("cp-tiered-2")[("hot", "miss")] == 1


def test_size_and_capacity_gauges_of_user_caches(patched: list) -> None:
    """Size comes from the instance's dict, capacity from max_size, per tier too."""
    patched += patch_cache_class(ThreeTier, "cp-gauges")
    tiered = ThreeTier()
    tiered.warm.put("a", 1)
    tiered.warm.put("b", 2)
    tiered.get("a")
    sizes = {
        v[1]: n for v, n in agentstat.testing.series(CACHE_SIZE).items() if v[0] == "cp-gauges"
    }
    capacity = {
        v[1]: n for v, n in agentstat.testing.series(CACHE_CAPACITY).items() if v[0] == "cp-gauges"
    }
    assert sizes == {"hot": 1, "warm": 2, "cold": 0}
    assert capacity == {"hot": 1, "warm": 2, "cold": 4}


def test_user_exceptions_pass_through_unchanged_and_uncounted(patched: list) -> None:
    """The user's own exception object reaches the caller; nothing is counted for it."""
    error = LookupError("user's own")

    class Raising(DictCache):
        def get(self, key: Any) -> Any:
            raise error

    patched += patch_cache_class(Raising, "cp-raising")
    with pytest.raises(LookupError) as raised:
        Raising().get("k")
    assert raised.value is error and lookups("cp-raising") == {}


def test_suppressed_instrumentation_counts_nothing(patched: list) -> None:
    """Inside suppress_instrumentation() the wrappers only forward the call."""
    patched += patch_cache_class(DictCache, "cp-suppressed")
    with suppress_instrumentation():
        DictCache().get("k")
    assert lookups("cp-suppressed") == {}


def test_a_hostile_attribute_never_breaks_the_users_call(patched: list) -> None:
    """An attribute whose access raises during tier detection does not reach user code."""

    class Hostile:
        @property
        def get(self) -> Any:
            raise RuntimeError("do not touch")

    class WithHostile(ThreeTier):
        def __init__(self) -> None:
            super().__init__()
            self.trap = Hostile()

    patched += patch_cache_class(WithHostile, "cp-hostile")
    assert WithHostile().get("k") is None


def test_keys_and_values_never_become_labels(patched: list) -> None:
    """Looked-up keys and cached values appear in no attribute value."""
    patched += patch_cache_class(DictCache, "cp-private")
    cache = DictCache()
    cache.put("secret-key", "secret-value")
    cache.get("secret-key")
    labels = {v for values in agentstat.testing.series(CACHE_LOOKUPS) for v in values}
    assert not {"secret-key", "secret-value"} & labels


def test_classes_that_do_not_fit_the_shape_raise_target_error() -> None:
    """No get, no release or an async acquire: TargetError with the reason."""

    class NoGet:
        def put(self, key: Any, value: Any) -> None: ...

    class NoRelease:
        def acquire(self, agent_type: str) -> None: ...

    class AsyncAcquire:
        async def acquire(self, agent_type: str) -> None: ...

        def release(self, instance: Any) -> None: ...

    with pytest.raises(TargetError, match="no get"):
        patch_cache_class(NoGet, "x")
    with pytest.raises(TargetError, match="no release"):
        patch_balancer_class(NoRelease, "x")
    with pytest.raises(TargetError, match="async"):
        patch_balancer_class(AsyncAcquire, "x")


# -------------------------------------------------------------------------- balancers


def test_balancer_selections_rejections_and_instance_gauges(patched: list) -> None:
    """Instances from acquire count as selections, None as rejections; gauges follow them."""
    patched += patch_balancer_class(FirstFree, "cp-lb")
    assert patched == [(FirstFree, "acquire"), (FirstFree, "register")]
    lb = FirstFree()
    lb.register(Replica("cp-r1", "cp-pool", 1))
    lb.register(Replica("cp-r2", "cp-pool", 1))
    first, second = lb.acquire("cp-pool"), lb.acquire("cp-pool")
    assert lb.acquire("cp-pool") is None
    assert first is not None and second is not None
    second.is_healthy = False
    lb.release(first)
    selections = agentstat.testing.series(BALANCER_SELECTIONS)
    assert selections[("cp-pool", "cp-r1")] == 1 and selections[("cp-pool", "cp-r2")] == 1
    assert agentstat.testing.series(BALANCER_REJECTIONS)[("cp-pool",)] == 1
    load = agentstat.testing.series(INSTANCE_LOAD)
    assert (load[("cp-pool", "cp-r1")], load[("cp-pool", "cp-r2")]) == (0, 1)
    assert agentstat.testing.series(INSTANCE_CAPACITY)[("cp-pool", "cp-r1")] == 1
    assert agentstat.testing.series(INSTANCE_HEALTHY)[("cp-pool", "cp-r2")] == 0


def test_odd_instances_do_not_break_acquire(patched: list) -> None:
    """An instance without the load fields is still returned; only gauges are skipped."""

    class Odd:
        @property
        def id(self) -> str:
            raise RuntimeError("no id")

    odd = Odd()

    class Hands(FirstFree):
        def acquire(self, agent_type: str) -> Any:
            return odd

    patched += patch_balancer_class(Hands, "cp-odd")
    assert Hands().acquire("cp-odd-pool") is odd


# ------------------------------------------------------------- review regressions


def test_library_objects_with_get_and_put_are_not_tiers(patched: list) -> None:
    """A queue.Queue attribute of a configured cache is not a tier: Queue.get stays unwrapped."""

    class WithQueue(DictCache):
        def __init__(self) -> None:
            super().__init__()
            self.jobs: queue.Queue[Any] = queue.Queue()

        def get(self, key: Any) -> Any:
            return self.cache.get(key)

    patched += patch_cache_class(WithQueue, "cp-with-queue")
    try:
        WithQueue().get("k")
        assert not isinstance(queue.Queue.__dict__["get"], wrapt.FunctionWrapper)
        assert lookups("cp-with-queue") == {("", "miss"): 1}
    finally:  # without the fix Queue.get is wrapped process-wide: undo it for other tests
        if isinstance(queue.Queue.__dict__["get"], wrapt.FunctionWrapper):
            unwrap(queue.Queue, "get")
            user_caches._get_states.pop(queue.Queue, None)


def test_standalone_get_of_a_lazily_wrapped_tier_class_takes_no_lock(
    patched: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a tiered get, a tier class's wrapped get does not take the global patch lock."""
    patched += patch_cache_class(ThreeTier, "cp-no-lock")
    ThreeTier().get("k")  # wraps DictCache.get lazily, as a tier
    assert isinstance(DictCache.__dict__["get"], wrapt.FunctionWrapper)
    taken = []

    class CountingLock:
        def __enter__(self) -> None:
            taken.append(1)

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(user_caches, "_patch_lock", CountingLock())
    standalone = DictCache()
    for _ in range(3):
        standalone.get("k")
    assert taken == []


def test_a_raising_size_or_capacity_skips_only_that_instance(
    patched: list, caplog: pytest.LogCaptureFixture
) -> None:
    """A user property that raises in a gauge callback drops that instance, logged once."""

    class BadCapacity:
        def __init__(self) -> None:
            self.cache: dict[Any, Any] = {}

        @property
        def max_size(self) -> int:
            raise RuntimeError("user property failed")

        def get(self, key: Any) -> Any:
            return self.cache.get(key)

    patched += patch_cache_class(BadCapacity, "cp-bad-capacity")
    patched += patch_cache_class(DictCache, "cp-good-capacity")
    bad, good = BadCapacity(), DictCache(max_size=7)
    bad.get("k")
    good.get("k")
    own = Cache[int, int](maxsize=9, name="cp-own-capacity")
    with caplog.at_level(logging.WARNING, logger="agentstat"):
        for _ in range(2):
            capacity = agentstat.testing.series(CACHE_CAPACITY)
            assert capacity[("cp-good-capacity", "")] == 7
            assert capacity[("cp-own-capacity", "")] == own.maxsize
            assert ("cp-bad-capacity", "") not in capacity
    assert len([r for r in caplog.records if "BadCapacity" in r.getMessage()]) == 1


class TaskBalancer:
    """acquire(task_text): the first argument is user text, not a pool name."""

    def __init__(self, replica: Any) -> None:
        self.replica = replica

    def acquire(self, task_text: str) -> Any:
        return self.replica

    def release(self, replica: Any) -> None:
        pass


class PoolBalancer(TaskBalancer):
    """acquire(priority, pool=...): the pool is named, though not first."""

    def acquire(self, priority: int, pool: str = "cp-default") -> Any:  # type: ignore[override]
        return self.replica


def test_pool_label_comes_only_from_a_parameter_named_agent_type_or_pool(patched: list) -> None:
    """acquire(task_text) never labels by its text; agent_type/pool parameters do label."""

    class Bare:  # no agent_type attribute: the entry's name is the pool label
        id = "cp-bare-1"

    patched += patch_balancer_class(TaskBalancer, "cp-task-lb")
    patched += patch_balancer_class(PoolBalancer, "cp-pool-lb")
    TaskBalancer(Replica("cp-typed-1", "cp-typed")).acquire("summarise my secret memo")
    TaskBalancer(Bare()).acquire("another secret task")
    TaskBalancer(None).acquire("a rejected secret task")
    PoolBalancer(Bare()).acquire(1, "cp-named-pool")
    PoolBalancer(Bare()).acquire(2, pool="cp-keyword-pool")
    selections = agentstat.testing.series(BALANCER_SELECTIONS)
    rejections = agentstat.testing.series(BALANCER_REJECTIONS)
    labels = {v for values in (*selections, *rejections) for v in values}
    assert not [label for label in labels if "secret" in label]
    assert selections[("cp-typed", "cp-typed-1")] == 1
    assert selections[("cp-task-lb", "cp-bare-1")] == 1
    assert rejections[("cp-task-lb",)] == 1
    assert selections[("cp-named-pool", "cp-bare-1")] == 1
    assert selections[("cp-keyword-pool", "cp-bare-1")] == 1
