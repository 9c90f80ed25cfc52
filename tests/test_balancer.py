"""LoadBalancer: strategies, leases, waiting, rejections, health, and no leaked capacity."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections import Counter

import pytest

from agentstat._metrics.store import STORE
from agentstat.runtime.balancer import (
    AgentInstance,
    LoadBalancer,
    NoCapacityError,
    NoHealthyInstanceError,
    Strategy,
    UnknownPoolError,
)
from agentstat.semconv import (
    BALANCER_WAIT,
)
from agentstat.testing import FakeClock


def pool_of(lb: LoadBalancer, n: int, capacity: int = 2, pool: str = "p") -> list[AgentInstance]:
    return [lb.register(AgentInstance(f"{pool}-{i}", pool, capacity=capacity)) for i in range(n)]


# ------------------------------------------------------------------------ strategies


def test_round_robin_cycles_through_instances_in_order() -> None:
    """Round robin hands out every instance in turn."""
    lb = LoadBalancer(strategy="round_robin")
    pool_of(lb, 3)
    chosen = []
    for _ in range(6):
        instance = lb.try_acquire("p")
        assert instance is not None
        chosen.append(instance.id)
        lb.release(instance)
    assert chosen == ["p-0", "p-1", "p-2", "p-0", "p-1", "p-2"]


def test_round_robin_skips_saturated_instances() -> None:
    """A full instance is left out of the rotation until it frees up."""
    lb = LoadBalancer(strategy=Strategy.ROUND_ROBIN)
    a, b = pool_of(lb, 2, capacity=1)
    first = lb.try_acquire("p")
    assert first is a
    assert [lb.try_acquire("p")] == [b]
    assert lb.try_acquire("p") is None
    lb.release(a)
    assert lb.try_acquire("p") is a


def test_least_loaded_picks_the_lowest_load_share() -> None:
    """Least loaded compares load/capacity, not raw load."""
    lb = LoadBalancer(strategy=Strategy.LEAST_LOADED)
    big = lb.register(AgentInstance("big", "p", capacity=10))
    small = lb.register(AgentInstance("small", "p", capacity=2))
    for _ in range(4):
        lb.try_acquire("p")
    # big 0.0->0.1, small 0.0->0.5, then big up to 0.3
    assert (big.load, small.load) == (3, 1)
    for _ in range(3):
        lb.try_acquire("p")
    # big reaches 0.5; at a tie the instance idle longest (small) goes first
    assert (big.load, small.load) == (5, 2)


def test_least_loaded_spreads_evenly_at_equal_capacity() -> None:
    """With equal capacities, loads never differ by more than one."""
    lb = LoadBalancer(strategy=Strategy.LEAST_LOADED)
    instances = pool_of(lb, 5, capacity=10)
    for _ in range(23):
        lb.try_acquire("p")
    loads = [i.load for i in instances]
    assert max(loads) - min(loads) <= 1 and sum(loads) == 23


def test_weighted_follows_weights() -> None:
    """Weighted selection is proportional to weight (at low load)."""
    lb = LoadBalancer(strategy=Strategy.WEIGHTED, rng=random.Random(7))
    heavy = lb.register(AgentInstance("heavy", "p", capacity=1000, weight=3.0))
    light = lb.register(AgentInstance("light", "p", capacity=1000, weight=1.0))
    counts: Counter[str] = Counter()
    for _ in range(4000):
        instance = lb.try_acquire("p")
        assert instance is not None
        counts[instance.id] += 1
        lb.release(instance)
    assert 2.6 < counts["heavy"] / counts["light"] < 3.4
    assert heavy.load == light.load == 0


def test_weighted_never_picks_a_full_instance() -> None:
    """A saturated instance has weight zero, whatever its static weight."""
    lb = LoadBalancer(strategy=Strategy.WEIGHTED)
    full = lb.register(AgentInstance("full", "p", capacity=1, weight=1000.0))
    free = lb.register(AgentInstance("free", "p", capacity=100, weight=1.0))
    assert lb.try_acquire("p") in (full, free)
    picks = {lb.try_acquire("p") for _ in range(50)}
    assert full.load == 1 and picks <= {free, full} and full.load <= full.capacity


def test_weighted_draw_at_the_top_of_the_range_picks_the_last_instance() -> None:
    """A draw equal to the total weight (rounding) maps to the last instance, not past it."""

    class Edge(random.Random):
        def __init__(self) -> None:
            super().__init__()
            self.draws = iter([1.0, 0.0])  # index draw at the very top, then accept

        def random(self) -> float:
            return next(self.draws)

    lb = LoadBalancer(strategy=Strategy.WEIGHTED, rng=Edge())
    first, last = pool_of(lb, 2, capacity=4)
    assert lb.try_acquire("p") is last
    assert (first.load, last.load) == (0, 1)


def test_power_of_two_prefers_the_less_loaded_of_two() -> None:
    """With two instances, power of two choices always picks the less loaded one."""
    lb = LoadBalancer(strategy=Strategy.POWER_OF_TWO, rng=random.Random(3))
    a, b = pool_of(lb, 2, capacity=100)
    for _ in range(40):
        lb.try_acquire("p")
    assert abs(a.load - b.load) <= 20 and a.load + b.load == 40


@pytest.mark.parametrize("strategy", list(Strategy))
def test_every_strategy_fills_capacity_exactly_then_refuses(strategy: Strategy) -> None:
    """All capacity can be used, never more, and refusals are counted rejections."""
    lb = LoadBalancer(strategy=strategy)
    instances = pool_of(lb, 4, capacity=3)
    held = [lb.try_acquire("p") for _ in range(12)]
    assert None not in held and all(i.load == 3 for i in instances)
    assert lb.try_acquire("p") is None
    assert lb.rejections("p") == 1
    for instance in held:
        assert instance is not None
        lb.release(instance)
    assert all(i.load == 0 for i in instances)
    assert sum(i.selections for i in instances) == 12


@pytest.mark.parametrize("strategy", list(Strategy))
def test_selection_cost_does_not_grow_with_pool_size(strategy: Strategy) -> None:
    """acquire+release at 5000 instances costs < 4x what it costs at 10 (no O(n) scan)."""

    def cost(n: int) -> float:
        lb = LoadBalancer(strategy=strategy)
        pool_of(lb, n, capacity=4)
        for _ in range(n):  # some load everywhere
            lb.try_acquire("p")
        start = time.perf_counter()
        for _ in range(3000):
            instance = lb.try_acquire("p")
            assert instance is not None
            lb.release(instance)
        return time.perf_counter() - start

    small = min(cost(10) for _ in range(3))
    large = min(cost(5000) for _ in range(3))
    assert large < 4 * small


# --------------------------------------------------------------------------- leases


def test_with_block_releases_and_exception_counts_a_failure() -> None:
    """A `with` lease releases on success and on exception; the exception is a failure."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1)
    with lb.acquire("p") as got:
        assert got is instance and instance.load == 1
    assert instance.load == 0 and instance._failures == 0
    with pytest.raises(RuntimeError), lb.acquire("p"):
        raise RuntimeError("agent failed")
    assert instance.load == 0 and instance._failures == 1


def test_async_with_releases_on_cancellation_without_a_failure() -> None:
    """A cancelled task releases its lease, and cancellation is not counted as a failure."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1)

    async def hold() -> None:
        async with lb.acquire("p"):
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(hold())
        await asyncio.sleep(0.01)
        assert instance.load == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert instance.load == 0 and instance._failures == 0


def test_non_blocking_lease_yields_none_only_when_asked() -> None:
    """block=False yields None when full (a counted rejection) and releases nothing."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1, capacity=1)
    with lb.acquire("p", block=False) as first, lb.acquire("p", block=False) as second:
        assert first is instance and second is None
    assert instance.load == 0 and lb.rejections("p") == 1


def test_full_pool_waits_then_raises_no_capacity_and_records_the_wait() -> None:
    """Blocking acquire waits up to timeout, raises NoCapacityError, counts and times it."""
    lb = LoadBalancer()
    pool_of(lb, 1, capacity=1, pool="wait-pool")
    before = STORE.histogram(BALANCER_WAIT).series(("wait-pool",)).snapshot().count
    with lb.acquire("wait-pool"):
        start = time.perf_counter()
        with (
            pytest.raises(NoCapacityError, match=r"wait-pool.*within 0\.05 s"),
            lb.acquire("wait-pool", timeout=0.05),
        ):
            pass
        assert time.perf_counter() - start >= 0.05
    assert lb.rejections("wait-pool") == 1
    snap = STORE.histogram(BALANCER_WAIT).series(("wait-pool",)).snapshot()
    assert snap.count == before + 1 and snap.sum >= 0.05


def test_waiting_thread_gets_the_released_instance() -> None:
    """A thread blocked on a full pool is handed the instance as soon as it is released."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1, capacity=1)
    got: list[AgentInstance] = []
    holder = lb.try_acquire("p")

    def wait() -> None:
        with lb.acquire("p", timeout=5) as acquired:
            got.append(acquired)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)
    assert holder is not None
    lb.release(holder)
    thread.join(5)
    assert got == [instance] and instance.load == 0


def test_async_waiters_are_served_in_order() -> None:
    """Async waiters get capacity first come, first served."""
    lb = LoadBalancer()
    pool_of(lb, 1, capacity=1)
    order: list[int] = []

    async def worker(n: int) -> None:
        async with lb.acquire("p", timeout=5):
            order.append(n)
            await asyncio.sleep(0.001)

    async def main() -> None:
        tasks = []
        for n in range(5):
            tasks.append(asyncio.ensure_future(worker(n)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == [0, 1, 2, 3, 4]


def test_unknown_pool_raises_a_lookup_error() -> None:
    """Acquiring from a pool nobody registered says so."""
    lb = LoadBalancer()
    with pytest.raises(UnknownPoolError, match="'nope'"), lb.acquire("nope"):
        pass


def test_double_release_is_refused() -> None:
    """Releasing more often than acquiring raises instead of corrupting the load."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1)
    with pytest.raises(ValueError, match="released more often"):
        lb.release(instance)


def test_duplicate_ids_in_one_pool_are_refused() -> None:
    """Two instances with one id would merge their metrics: refused."""
    lb = LoadBalancer()
    lb.register(AgentInstance("a", "p"))
    with pytest.raises(ValueError, match="already has"):
        lb.register(AgentInstance("a", "p"))


def test_deregistered_instance_gets_no_traffic_and_can_still_be_released() -> None:
    """deregister removes an instance from selection; its in-flight lease still ends."""
    lb = LoadBalancer(strategy=Strategy.ROUND_ROBIN)
    a, b = pool_of(lb, 2, capacity=5)
    held = lb.try_acquire("p")
    assert held is a
    lb.deregister("p", "p-0")
    assert {lb.try_acquire("p") for _ in range(3)} == {b}
    lb.release(a)
    assert a.load == 0


def test_10k_tasks_with_errors_and_cancellations_leave_no_load() -> None:
    """10k tasks through a small pool, 10% failing and 10% cancelled: every load ends at 0."""
    lb = LoadBalancer(strategy=Strategy.LEAST_LOADED, max_failures=10**9)
    instances = pool_of(lb, 8, capacity=4, pool="stress")
    rng = random.Random(42)
    completed = 0

    async def job(kind: int) -> None:
        nonlocal completed
        async with lb.acquire("stress", timeout=None):
            await asyncio.sleep(0)
            if kind == 1:
                raise ValueError("agent error")
            await asyncio.sleep(0)
            completed += 1

    async def main() -> None:
        kinds = [rng.choice([0] * 8 + [1, 2]) for _ in range(10_000)]
        tasks = [asyncio.ensure_future(job(k)) for k in kinds]
        await asyncio.sleep(0)
        for task, kind in zip(tasks, kinds, strict=True):
            if kind == 2:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(isinstance(r, ValueError) for r in results) == kinds.count(1)
        assert completed == kinds.count(0)

    asyncio.run(main())
    assert [i.load for i in instances] == [0] * 8
    assert lb.waiting("stress") == 0


def test_threads_contending_for_a_small_pool_leave_no_load() -> None:
    """8 threads x 2000 leases on 3 slots: exact selection counts, loads back at 0."""
    lb = LoadBalancer(strategy=Strategy.POWER_OF_TWO)
    instances = pool_of(lb, 3, capacity=1, pool="threads")

    def work() -> None:
        for _ in range(2000):
            with lb.acquire("threads", timeout=10):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [i.load for i in instances] == [0, 0, 0]
    assert sum(i.selections for i in instances) == 16_000


# --------------------------------------------------------------------------- health


def test_consecutive_failures_eject_then_cooldown_recovers() -> None:
    """max_failures failures in a row eject; no traffic while ejected; back after cooldown."""
    clock = FakeClock(now=50.0)
    lb = LoadBalancer(strategy=Strategy.ROUND_ROBIN, max_failures=3, cooldown=30, clock=clock)
    bad, good = pool_of(lb, 2, capacity=10)
    for _ in range(3):
        lb.release(_take(lb, bad), failed=True)
    assert not bad.healthy
    assert {lb.try_acquire("p") for _ in range(5)} == {good}
    clock.now += 30
    assert bad in {lb.try_acquire("p") for _ in range(4)}
    assert bad.healthy


def _take(lb: LoadBalancer, instance: AgentInstance) -> AgentInstance:
    """Acquire until ``instance`` is handed out (round robin reaches it quickly)."""
    for _ in range(100):
        got = lb.try_acquire(instance.agent_type)
        assert got is not None
        if got is instance:
            return got
        lb.release(got)
    raise AssertionError("instance never selected")


def test_instance_deregistered_while_ejected_stays_out_after_cooldown() -> None:
    """An instance removed during its ejection is not brought back when the cooldown ends."""
    clock = FakeClock(now=50.0)
    lb = LoadBalancer(strategy=Strategy.ROUND_ROBIN, max_failures=1, cooldown=2, clock=clock)
    gone, kept = pool_of(lb, 2, capacity=10)
    lb.release(_take(lb, gone), failed=True)
    assert not gone.healthy
    lb.deregister("p", gone.id)
    clock.now += 5
    assert {lb.try_acquire("p") for _ in range(6)} == {kept}
    assert gone.current_load == 0
    assert [i.id for i in lb.instances("p") if i.healthy] == [kept.id]


def test_success_resets_the_failure_streak() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    lb = LoadBalancer(max_failures=2)
    (instance,) = pool_of(lb, 1)
    for failed in (True, False, True, False, True):
        lb.try_acquire("p")
        lb.release(instance, failed=failed)
    assert instance.healthy


def test_recovered_instance_is_half_open() -> None:
    """After a cool-down one more failure ejects again; one success heals completely."""
    clock = FakeClock(now=50.0)
    lb = LoadBalancer(max_failures=3, cooldown=10, clock=clock)
    (instance,) = pool_of(lb, 1)
    for _ in range(3):
        lb.try_acquire("p")
        lb.release(instance, failed=True)
    clock.now += 10
    assert lb.try_acquire("p") is instance
    lb.release(instance, failed=True)
    assert not instance.healthy


def test_all_ejected_raises_no_healthy_instance_at_once() -> None:
    """When every instance is ejected, acquire fails immediately and says so."""
    clock = FakeClock(now=50.0)
    lb = LoadBalancer(max_failures=1, cooldown=20, clock=clock)
    a, b = pool_of(lb, 2)
    for instance in (a, b):
        lb.eject("p", instance.id, 20)
    start = time.perf_counter()
    with (
        pytest.raises(NoHealthyInstanceError, match=r"all 2 instances are ejected.*20\.0 s"),
        lb.acquire("p", timeout=5),
    ):
        pass
    assert time.perf_counter() - start < 1 and lb.rejections("p") == 1


def test_waiters_fail_when_the_last_healthy_instance_is_ejected() -> None:
    """A caller waiting for capacity is told at once when no healthy instance is left."""
    lb = LoadBalancer(max_failures=1)
    (instance,) = pool_of(lb, 1, capacity=1)
    holder = lb.try_acquire("p")

    async def main() -> None:
        waiting = asyncio.ensure_future(lb.acquire("p", timeout=5).__aenter__())
        await asyncio.sleep(0.01)
        assert holder is not None
        lb.release(holder, failed=True)
        with pytest.raises(NoHealthyInstanceError):
            await waiting

    asyncio.run(main())
    assert instance.load == 0


def test_sync_probe_ejects_and_restores() -> None:
    """A failing probe (False or an exception) ejects; a passing one restores."""
    verdicts = {"p-0": True, "p-1": True}

    def probe(instance: AgentInstance) -> bool:
        verdict = verdicts[instance.id]
        if verdict is None:
            raise ConnectionError("down")
        return verdict

    lb = LoadBalancer(probe=probe)
    a, b = pool_of(lb, 2)
    verdicts.update({"p-0": False, "p-1": None})  # type: ignore[dict-item]
    lb.check_health()
    assert not a.healthy and not b.healthy
    verdicts.update({"p-0": True, "p-1": True})
    lb.check_health()
    assert a.healthy and b.healthy


def test_async_probe_runs_on_its_interval() -> None:
    """start_health_checks() runs an async probe in the loop every probe_interval."""
    seen: list[str] = []

    async def probe(instance: AgentInstance) -> bool:
        seen.append(instance.id)
        return instance.id != "p-1"

    lb = LoadBalancer(probe=probe, probe_interval=0.01)
    a, b = pool_of(lb, 2)

    async def main() -> None:
        lb.start_health_checks()
        await asyncio.sleep(0.05)
        lb.close()

    asyncio.run(main())
    assert a.healthy and not b.healthy
    assert seen.count("p-0") >= 2


def test_release_from_another_thread_wakes_an_async_waiter() -> None:
    """An instance released by a worker thread is handed to a task waiting in a loop."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1, capacity=1)
    holder = lb.try_acquire("p")

    async def main() -> AgentInstance:
        async with lb.acquire("p", timeout=5) as got:
            return got

    def release_later() -> None:
        time.sleep(0.05)
        assert holder is not None
        lb.release(holder)

    thread = threading.Thread(target=release_later)
    thread.start()
    assert asyncio.run(main()) is instance
    thread.join()
    assert instance.load == 0


def test_least_loaded_index_stays_bounded_under_churn() -> None:
    """Stale heap entries are compacted: the index never exceeds ~4x the pool size."""
    lb = LoadBalancer(strategy=Strategy.LEAST_LOADED)
    instances = pool_of(lb, 50, capacity=10, pool="churn")
    rng = random.Random(1)
    held: list[AgentInstance] = []
    for _ in range(20_000):
        if held and (rng.random() < 0.5 or len(held) >= 400):
            lb.release(held.pop(rng.randrange(len(held))))
        else:
            got = lb.try_acquire("churn")
            assert got is not None
            held.append(got)
        # the one internal read: the lazy heap's bound is the property under test
        assert len(lb._pools["churn"].heap) <= 4 * 50 + 64 + 1
    for instance in held:
        lb.release(instance)
    assert all(i.load == 0 for i in instances)


def test_instance_handed_to_a_task_cancelled_before_it_resumed_is_given_back() -> None:
    """If a waiter is cancelled right after being handed an instance, the instance returns."""
    lb = LoadBalancer()
    (instance,) = pool_of(lb, 1, capacity=1)

    async def main() -> None:
        holder = lb.try_acquire("p")
        assert holder is not None
        lease = lb.acquire("p", timeout=5)
        waiting = asyncio.ensure_future(lease.__aenter__())
        await asyncio.sleep(0)  # now queued as a waiter
        lb.release(holder)  # handed over: the future has its result, the task not yet run
        assert instance.load == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    assert instance.load == 0
    assert lb.try_acquire("p") is instance


# ------------------------------------------------------------ moving an instance


@pytest.mark.parametrize("strategy", list(Strategy))
def test_deregistered_instance_moves_to_another_balancer(strategy: Strategy) -> None:
    """After deregister, another balancer serves the instance and the old one never does."""
    old, new = LoadBalancer(strategy=strategy), LoadBalancer(strategy=strategy)
    moved, kept = pool_of(old, 2, capacity=4)
    held = [old.try_acquire("p") for _ in range(4)]
    for instance in held:
        assert instance is not None
        old.release(instance)
    old.deregister("p", moved.id)
    new.register(moved)
    assert new.try_acquire("p") is moved
    assert {old.try_acquire("p") for _ in range(3)} == {kept}
    new.release(moved)
    assert moved.load == 0 and kept.load == 3


def test_register_refuses_an_instance_still_registered_with_another_balancer() -> None:
    """One instance belongs to one balancer at a time: a second register is a clear error."""
    first, second = LoadBalancer(), LoadBalancer()
    (instance,) = pool_of(first, 1)
    with pytest.raises(ValueError, match="still registered with another balancer"):
        second.register(instance)
    assert second.pools() == []
    assert first.try_acquire("p") is instance


def test_register_refuses_an_instance_with_leases_from_another_balancer() -> None:
    """Its in-flight leases end on the old balancer, so another one cannot take it yet."""
    first, second = LoadBalancer(), LoadBalancer()
    (instance,) = pool_of(first, 1)
    assert first.try_acquire("p") is instance
    first.deregister("p", instance.id)
    with pytest.raises(ValueError, match="in flight from another balancer"):
        second.register(instance)
    first.release(instance)
    second.register(instance)
    assert second.try_acquire("p") is instance


# ------------------------------------------------------------- interrupted waits


class HandlerError(Exception):
    """What a signal handler raises in the test below."""


def _interrupt_blocked_acquire(exc_type: type[BaseException]) -> tuple[LoadBalancer, AgentInstance]:
    """Block the main thread in ``acquire`` on a full pool, deliver a real signal whose
    handler raises ``exc_type``, then release the lease that kept the pool full."""
    lb = LoadBalancer()
    instance = lb.register(AgentInstance("a", "p", capacity=1))
    held = lb.try_acquire("p")
    assert held is not None

    def handler(signum: int, frame: object) -> None:
        raise exc_type("interrupted")

    def interrupt() -> None:
        while lb.waiting("p") == 0:
            time.sleep(0.001)
        signal.pthread_kill(main, signal.SIGUSR1)

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    thread = threading.Thread(target=interrupt)
    try:
        thread.start()
        with pytest.raises(exc_type), lb.acquire("p", timeout=10):
            pytest.fail("the wait was interrupted: the body must not run")
    finally:
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
    assert lb.waiting("p") == 0
    lb.release(held)
    return lb, instance


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, HandlerError])
def test_blocking_wait_interrupted_by_a_signal_leaves_no_waiter_and_no_load(
    exc_type: type[BaseException],
) -> None:
    """A ``with acquire()`` blocked in a wait and interrupted by KeyboardInterrupt or by a
    signal handler's exception leaves the queue: the next release is not handed to it."""
    lb, instance = _interrupt_blocked_acquire(exc_type)
    assert instance.load == 0
    again = lb.try_acquire("p")
    assert again is instance
    lb.release(again)


def test_timed_out_and_cancelled_waiters_leave_the_queue_at_once() -> None:
    """Waiters that time out (sync and async) or are cancelled are gone from the queue
    right away, not when capacity frees up."""
    lb = LoadBalancer()
    instance = lb.register(AgentInstance("a", "p", capacity=1))
    held = lb.try_acquire("p")
    for _ in range(3):
        with pytest.raises(NoCapacityError), lb.acquire("p", timeout=0.01):
            pass
    assert lb.waiting("p") == 0

    async def main() -> None:
        with pytest.raises(NoCapacityError):
            async with lb.acquire("p", timeout=0.01):
                pass
        task = asyncio.ensure_future(lb.acquire("p", timeout=None).__aenter__())
        await asyncio.sleep(0.01)
        assert lb.waiting("p") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert lb.waiting("p") == 0
    assert held is not None
    lb.release(held)
    assert instance.load == 0


def test_instance_granted_just_before_an_interrupt_is_given_back() -> None:
    """A lease interrupted after its wait was granted, before the ``with`` body ran,
    gives the instance back."""
    lb = LoadBalancer()
    instance = lb.register(AgentInstance("a", "p", capacity=1))
    held = lb.try_acquire("p")
    assert held is not None

    def release_then_interrupt() -> None:
        while lb.waiting("p") == 0:
            time.sleep(0.001)
        lb.release(held)  # hands the instance to the blocked waiter
        signal.pthread_kill(main, signal.SIGUSR1)

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    thread = threading.Thread(target=release_then_interrupt)
    entered = False
    try:
        thread.start()
        with lb.acquire("p", timeout=10):
            entered = True
            time.sleep(1)  # the interrupt lands here if it did not land in the wait
    except KeyboardInterrupt:
        pass
    finally:
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
    assert instance.load == 0, entered
    assert lb.waiting("p") == 0


def test_old_and_new_import_paths_give_the_same_balancer() -> None:
    """``agentstat.balancer``, ``agentstat.runtime.balancer`` and ``agentstat`` export the
    same classes after the split."""
    import agentstat
    import agentstat.balancer as old
    import agentstat.runtime.balancer as new

    for name in old.__all__:
        assert getattr(old, name) is getattr(new, name)
    assert agentstat.LoadBalancer is new.LoadBalancer
    assert agentstat.AgentInstance is new.AgentInstance
