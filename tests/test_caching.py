"""Cache, TieredCache and the cached decorator: semantics, counts, TTL, single flight."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import agentstat.testing
from agentstat import MISSING, Cache, Tier, TieredCache, cached
from agentstat._metrics import counts as _runtime_metrics
from agentstat.semconv import CACHE_LOOKUPS, OTHER
from agentstat.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows, to expose lost updates."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


# --------------------------------------------------------------------------- Cache


@pytest.mark.parametrize("value", [None, 0, "", False, [], 0.0])
def test_falsy_cached_values_are_hits(value: object) -> None:
    """A cached None/0/""/False is returned and counted as a hit, never as a miss."""
    cache: Cache[str, object] = Cache(maxsize=4, name="falsy")
    cache.put("k", value)
    assert cache.get("k", MISSING) == value
    assert cache.lookup("k") == (True, value)
    assert (cache.hits, cache.misses) == (2, 0)


def test_miss_returns_default_and_is_counted() -> None:
    """A miss returns the given default (None if none) and counts one miss."""
    cache: Cache[str, int] = Cache(maxsize=4, name="miss")
    assert cache.get("absent") is None
    assert cache.get("absent", MISSING) is MISSING
    assert cache.lookup("absent") == (False, None)
    assert (cache.hits, cache.misses, cache.hit_rate) == (0, 3, 0.0)


def test_lru_evicts_least_recently_used_and_counts_size_evictions() -> None:
    """At maxsize the least recently used entry goes; a get refreshes recency."""
    cache: Cache[str, int] = Cache(maxsize=2, name="lru")
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")  # b is now the least recently used
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert (len(cache), cache.evictions, cache.expirations) == (2, 1, 0)


def test_put_of_existing_key_replaces_without_eviction() -> None:
    """Overwriting a key updates its value in place and evicts nothing."""
    cache: Cache[str, int] = Cache(maxsize=2, name="overwrite")
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    assert cache.get("a") == 10 and len(cache) == 2 and cache.evictions == 0


def test_default_and_per_entry_ttl_expire_on_the_injected_clock(clock: FakeClock) -> None:
    """Entries expire after the default TTL or their own; expiry counts, not size."""
    cache: Cache[str, str] = Cache(maxsize=10, ttl=60, name="ttl", clock=clock)
    cache.put("default", "d")
    cache.put("short", "s", ttl=5)
    clock.advance(5)
    assert cache.get("short", MISSING) is MISSING  # expires at exactly its TTL
    assert cache.get("default") == "d"
    clock.advance(55)
    assert cache.get("default", MISSING) is MISSING
    assert (cache.hits, cache.misses, cache.expirations, cache.evictions) == (1, 2, 2, 0)
    assert len(cache) == 0


def test_wall_clock_is_not_used_for_ttl(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wall-clock jump neither expires nor revives entries: only the monotonic clock counts."""
    cache: Cache[str, str] = Cache(maxsize=10, ttl=60, name="wall", clock=clock)
    cache.put("k", "v")
    monkeypatch.setattr(time, "time", lambda: 10.0**12)
    assert cache.get("k") == "v"


def test_expired_entry_at_lru_end_is_counted_as_expired(clock: FakeClock) -> None:
    """An expired entry pushed out by size counts as an expiry, not a size eviction."""
    cache: Cache[str, int] = Cache(maxsize=1, name="lru-expired", clock=clock)
    cache.put("old", 1, ttl=1)
    clock.advance(2)
    cache.put("new", 2)
    assert (cache.evictions, cache.expirations) == (0, 1)


def test_expire_purges_every_expired_entry(clock: FakeClock) -> None:
    """expire() drops all expired entries at once and returns how many."""
    cache: Cache[int, int] = Cache(maxsize=100, name="purge", clock=clock)
    for i in range(10):
        cache.put(i, i, ttl=1 if i % 2 else 100)
    clock.advance(5)
    assert cache.expire() == 5
    assert len(cache) == 5 and cache.expirations == 5


def test_delete_and_clear_are_not_evictions() -> None:
    """Removing entries on purpose changes neither eviction nor lookup counts."""
    cache: Cache[str, int] = Cache(maxsize=4, name="delete")
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.delete("a") and not cache.delete("a")
    cache.clear()
    assert (len(cache), cache.evictions, cache.expirations, cache.hits, cache.misses) == (
        0,
        0,
        0,
        0,
        0,
    )


def test_hit_rate_is_hits_over_lookups() -> None:
    """hit_rate = hits / (hits + misses)."""
    cache: Cache[int, int] = Cache(maxsize=4, name="rate")
    cache.put(1, 1)
    for key in (1, 1, 1, 2):
        cache.get(key)
    assert cache.hit_rate == 0.75


@pytest.mark.parametrize("kwargs", [{"maxsize": 0}, {"ttl": 0}, {"ttl": -1}])
def test_invalid_settings_raise_value_error(kwargs: dict) -> None:
    """A zero size or a non-positive TTL is refused with a clear message."""
    with pytest.raises(ValueError):
        Cache(**kwargs)


def test_exact_counts_under_8_threads_x_100k_operations(fast_switching: None) -> None:
    """8 threads x 100k gets (3/4 hits) plus concurrent overwrites lose no count."""
    cache: Cache[int, int] = Cache(maxsize=1000, name="threads")
    for key in range(100):
        cache.put(key, key)
    per_thread = 100_000
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        get, put = cache.get, cache.put
        barrier.wait()
        for i in range(per_thread):
            if i % 4 == 0:
                get(-1 - (i % 50))  # never stored: a miss
            else:
                get((i + seed) % 100)
            if i % 100 == 0:
                put((i + seed) % 100, i)  # overwrite while others read

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.hits == 8 * per_thread * 3 // 4
    assert cache.misses == 8 * per_thread // 4
    assert (cache.evictions, cache.expirations, len(cache)) == (0, 0, 100)


def test_concurrent_inserts_evict_exactly_the_overflow(fast_switching: None) -> None:
    """8 threads inserting distinct keys leave maxsize entries and count every eviction."""
    cache: Cache[tuple[int, int], int] = Cache(maxsize=500, name="evict-threads")

    def work(thread: int) -> None:
        for i in range(20_000):
            cache.put((thread, i), i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 500
    assert cache.evictions == 8 * 20_000 - 500


# ---------------------------------------------------------------------- TieredCache


def small_tiers(clock: FakeClock) -> TieredCache[str, object]:
    return TieredCache(
        (Tier("hot", 2, 10.0), Tier("warm", 2, 100.0), Tier("cold", 4, 1000.0)),
        name="tiered",
        clock=clock,
    )


def test_size_eviction_demotes_one_tier_and_hit_promotes_to_hot(clock: FakeClock) -> None:
    """Entries pushed out of hot land in warm; a warm hit moves the entry back to hot."""
    tiers = small_tiers(clock)
    for key in "abc":
        tiers.put(key, key.upper())
    assert "a" in tiers.tier("warm") and "a" not in tiers.tier("hot")
    assert tiers.get("a") == "A"
    assert "a" in tiers.tier("hot") and "a" not in tiers.tier("warm")
    # per tier: hot missed then warm hit; whole cache: one hit
    assert (tiers.tier("hot").misses, tiers.tier("warm").hits, tiers.hits) == (1, 1, 1)
    assert len(tiers) == 3


def test_whole_and_per_tier_counts_of_a_miss(clock: FakeClock) -> None:
    """A miss is counted once for the whole cache and once in every tier it passed."""
    tiers = small_tiers(clock)
    assert tiers.get("nothing", MISSING) is MISSING
    assert tiers.misses == 1
    assert [tiers.tier(t).misses for t in ("hot", "warm", "cold")] == [1, 1, 1]


@pytest.mark.parametrize("value", [None, 0, "", False])
def test_tiered_falsy_values_are_hits_in_every_tier(clock: FakeClock, value: object) -> None:
    """Falsy values are served from any tier (an `if value:` check would lose them)."""
    tiers = small_tiers(clock)
    tiers.put("k", value)
    for filler in ("x", "y", "z", "w"):  # push k down to cold
        tiers.put(filler, 1)
    assert "k" in tiers.tier("cold")
    assert tiers.get("k", MISSING) == value and tiers.get("k", MISSING) == value
    assert tiers.hits == 2


def test_put_after_demotion_leaves_no_stale_copy(clock: FakeClock) -> None:
    """After put() of a new value no tier can serve the old one."""
    tiers = small_tiers(clock)
    tiers.put("k", "old")
    tiers.put("x", 1)
    tiers.put("y", 1)  # "old" is now in warm
    tiers.put("k", "new")
    assert "k" not in tiers.tier("warm") and "k" not in tiers.tier("cold")
    for filler in ("p", "q"):  # push "new" down too
        tiers.put(filler, 1)
    assert tiers.get("k") == "new"


def test_tier_ttl_and_put_ttl_both_bound_an_entry(clock: FakeClock) -> None:
    """A tier TTL drops an entry from that tier; put()'s ttl caps it across tiers."""
    tiers = small_tiers(clock)
    tiers.put("k", "v")
    clock.advance(11)  # hot TTL is 10 s
    assert tiers.get("k", MISSING) is MISSING
    assert tiers.tier("hot").expirations == 1
    tiers.put("short", "s", ttl=15)
    for filler in ("x", "y"):
        tiers.put(filler, 1)  # short demoted to warm (TTL 100 s) but keeps its 15 s
    clock.advance(16)
    assert tiers.get("short", MISSING) is MISSING


def test_last_tier_drops_entries_evicted_by_size(clock: FakeClock) -> None:
    """The cold tier's size evictions leave the cache; total size stays bounded."""
    tiers = small_tiers(clock)
    for i in range(20):
        tiers.put(str(i), i)
    assert len(tiers) == 8
    assert tiers.tier("cold").evictions == 12


def test_tier_names_must_be_distinct() -> None:
    """Two tiers with one name would merge their metrics: refused."""
    with pytest.raises(ValueError):
        TieredCache((Tier("a", 1), Tier("a", 2)))


# ------------------------------------------------------------------------- cached


def test_cached_computes_once_per_key_and_caches_none() -> None:
    """Repeated calls hit the cache, a None result included."""
    calls: list[object] = []

    @cached(maxsize=16, name="cached-none")
    def compute(x: object) -> None:
        calls.append(x)

    for _ in range(3):
        compute("a")
    assert calls == ["a"]
    assert (compute.cache.hits, compute.cache.misses) == (2, 1)  # type: ignore[attr-defined]


def test_equal_but_different_arguments_get_different_entries() -> None:
    """1, True, 1.0, (1,), (True,) and same-str() objects never share a cached result."""

    class Same:
        def __init__(self, n: int) -> None:
            self.n = n

        def __str__(self) -> str:
            return "same"

    @cached
    def identity(x: object) -> object:
        return x

    args: list[object] = [1, True, 1.0, "1", (1,), (True,), frozenset({1}), frozenset({True})]
    for arg in args:
        result = identity(arg)
        assert result is arg or (type(result) is type(arg) and result == arg)
    first, second = Same(1), Same(2)
    assert identity(first) is first and identity(second) is second
    assert identity.cache.misses == len(args) + 2  # type: ignore[attr-defined]


def test_keyword_order_does_not_matter() -> None:
    """f(a=1, b=2) and f(b=2, a=1) are one entry."""
    calls = []

    @cached
    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    assert add(a=1, b=2) == add(b=2, a=1) == 3
    assert len(calls) == 1


def test_unhashable_argument_raises_a_clear_type_error() -> None:
    """A list argument raises TypeError naming the argument and the key= escape hatch."""

    @cached
    def total(values: list[int]) -> int:
        return sum(values)

    with pytest.raises(TypeError, match=r"argument 0 is an unhashable list; pass key="):
        total([1, 2])


def test_key_function_makes_unhashable_arguments_cacheable() -> None:
    """A user key= function builds the key instead of the arguments."""
    calls = []

    @cached(key=lambda values: tuple(values))
    def total(values: list[int]) -> int:
        calls.append(values)
        return sum(values)

    assert total([1, 2]) == total([1, 2]) == 3
    assert len(calls) == 1


def test_exceptions_are_not_cached() -> None:
    """A call that raised is computed again next time."""
    calls = []

    @cached
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1 and len(calls) == 2


def test_shared_cache_keeps_functions_apart() -> None:
    """Two functions on one cache with the same arguments do not see each other's results."""
    shared: Cache[object, object] = Cache(maxsize=16, name="shared")

    @cached(shared)
    def double(x: int) -> int:
        return 2 * x

    @cached(shared)
    def triple(x: int) -> int:
        return 3 * x

    assert (double(1), triple(1)) == (2, 3)


def test_methods_are_cached_per_instance() -> None:
    """The instance is part of the key: two objects do not share results."""

    class Agent:
        def __init__(self, n: int) -> None:
            self.n = n
            self.calls = 0

        @cached
        def answer(self, q: str) -> str:
            self.calls += 1
            return f"{self.n}:{q}"

    a, b = Agent(1), Agent(2)
    assert (a.answer("q"), a.answer("q"), b.answer("q")) == ("1:q", "1:q", "2:q")
    assert (a.calls, b.calls) == (1, 1)


def test_single_flight_for_threads() -> None:
    """16 threads missing the same key at once run the function once and share the result."""
    calls = []
    barrier = threading.Barrier(16)

    @cached
    def slow(x: int) -> int:
        calls.append(x)
        time.sleep(0.1)
        return x * 10

    results: list[int] = []

    def call() -> None:
        barrier.wait()
        results.append(slow(7))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [7] and results == [70] * 16


def test_single_flight_shares_an_exception_with_waiting_threads_but_does_not_cache_it() -> None:
    """Threads waiting on a failing computation all get its exception; the next call retries."""
    calls = []
    barrier = threading.Barrier(4)

    @cached
    def failing(x: int) -> int:
        calls.append(x)
        time.sleep(0.1)
        if len(calls) == 1:
            raise ValueError("boom")
        return x

    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            failing(1)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4 and len(calls) == 1
    assert failing(1) == 1 and len(calls) == 2


def test_single_flight_for_asyncio_tasks() -> None:
    """200 tasks missing one key compute it once; async results are cached."""
    calls = []

    @cached(ttl=60, name="async-flight")
    async def fetch(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.01)
        return x + 1

    async def main() -> list[int]:
        return await asyncio.gather(*(fetch(1) for _ in range(200)))

    assert asyncio.run(main()) == [2] * 200
    assert calls == [1]
    assert fetch.cache.misses >= 1 and fetch.cache.hits == 0  # type: ignore[attr-defined]


def test_async_waiters_get_the_exception_and_it_is_not_cached() -> None:
    """Tasks waiting on a failing computation all raise it; a later call computes again."""
    calls = []

    @cached
    async def failing(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise KeyError("boom")
        return x

    async def main() -> tuple[list[object], int]:
        results = await asyncio.gather(*(failing(1) for _ in range(5)), return_exceptions=True)
        return results, await failing(1)

    results, later = asyncio.run(main())
    assert all(isinstance(r, KeyError) for r in results) and later == 1
    assert len(calls) == 2


def test_cancelled_async_leader_hands_the_computation_to_a_waiter() -> None:
    """If the computing task is cancelled, a waiting task computes instead of failing."""
    calls = []

    @cached
    async def fetch(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.05)
        return x

    async def main() -> int:
        leader = asyncio.ensure_future(fetch(3))
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(fetch(3))
        await asyncio.sleep(0.01)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await waiter

    assert asyncio.run(main()) == 3
    assert calls == [3, 3]


def test_async_methods_are_cached() -> None:
    """async def methods work with @cached like functions."""

    class Agent:
        calls = 0

        @cached
        async def answer(self, q: str) -> str:
            Agent.calls += 1
            return q.upper()

    agent = Agent()

    async def main() -> list[str]:
        return [await agent.answer("a"), await agent.answer("a")]

    assert asyncio.run(main()) == ["A", "A"] and Agent.calls == 1


def test_tier_names_beyond_the_cap_become_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tier names are labels: past the cap they are reported as _OTHER, as user tiers are."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    agentstat.testing.reset()
    tiers = TieredCache((Tier("t-a", 1), Tier("t-b", 1), Tier("t-c", 1)), name="capped-tiers")
    tiers.get("k")
    labels = {
        values[1]
        for values in _runtime_metrics.COUNTS.observe(CACHE_LOOKUPS)
        if values[0] == "capped-tiers"
    }
    assert labels == {"t-a", "t-b", OTHER, "all"}
    assert tiers.tier("t-c").misses == 1  # still found by the name it was given


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_computes_a_key_its_parent_was_computing() -> None:
    """A fork while another thread computes a key: the child computes it itself instead
    of waiting forever for a thread it does not have."""
    started, release = threading.Event(), threading.Event()

    @cached(name="fork-flight")
    def slow(x: int) -> int:
        if threading.current_thread() is not threading.main_thread():
            started.set()
            release.wait(10)
        return x * 2

    thread = threading.Thread(target=slow, args=(1,))
    thread.start()
    assert started.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 if it computed the value within the alarm
        signal.alarm(5)
        os._exit(0 if slow(1) == 2 else 1)
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        thread.join(10)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
