"""Property-based tests of LoadBalancer over random interleavings of acquire, release,
interrupt, timeout, cancel, eject, restore, deregister and re-register, sync and async:
every instance's load equals the leases really held, capacity is never exceeded, no
waiter that gave up stays queued, and everything returns to load 0."""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from agentstat import BalancerError, NoCapacityError, NoHealthyInstanceError
from agentstat.runtime.balancer import AgentInstance, Lease, LoadBalancer, Strategy

POOL = "p"
IDS = ("a", "b", "c")
SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class Failure(Exception):
    """The work done under a lease failed (counts toward ejection)."""


class Interrupted(Exception):
    """What the test's signal handler raises in the blocked main thread."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def holding(lease: Lease[Any]) -> Generator[Any, BaseException | None, None]:
    """Hold ``lease`` in a real ``with`` block, suspended until sent how the work ends."""
    with lease as instance:
        how = yield instance
        if how is not None:
            raise how


class _Base(RuleBasedStateMachine):
    """Membership and health rules shared by the sync and async machines."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.lb: LoadBalancer | None = None
        self.instances: dict[str, AgentInstance] = {}
        self.registered: set[str] = set()

    @initialize(
        strategy=st.sampled_from(Strategy),
        capacities=st.lists(st.integers(1, 2), min_size=3, max_size=3),
    )
    def setup(self, strategy: Strategy, capacities: list[int]) -> None:
        self.lb = LoadBalancer(strategy, max_failures=2, cooldown=5.0, clock=self.clock)
        for ident, capacity in zip(IDS, capacities, strict=True):
            self.instances[ident] = AgentInstance(ident, POOL, capacity=capacity)
            self.lb.register(self.instances[ident])
            self.registered.add(ident)

    @rule(ident=st.sampled_from(IDS))
    def register(self, ident: str) -> None:
        if ident not in self.registered:
            self.lb.register(self.instances[ident])
            self.registered.add(ident)
        self.after_change()

    @rule(ident=st.sampled_from(IDS))
    def deregister(self, ident: str) -> None:
        if ident in self.registered:
            self.lb.deregister(POOL, ident)
            self.registered.discard(ident)
        self.after_change()

    @rule(ident=st.sampled_from(IDS), seconds=st.sampled_from([None, 5.0]))
    def eject(self, ident: str, seconds: float | None) -> None:
        if ident in self.registered:
            self.lb.eject(POOL, ident, seconds)
        self.after_change()

    @rule(ident=st.sampled_from(IDS))
    def restore(self, ident: str) -> None:
        if ident in self.registered:
            self.lb.restore(POOL, ident)
        self.after_change()

    @rule()
    def cooldown_passes(self) -> None:
        self.clock.now += 10.0

    def after_change(self) -> None:
        """Let whatever a membership or health change handed over arrive."""

    # -- invariants ------------------------------------------------------------------

    def held_per_instance(self) -> dict[str, int]:
        raise NotImplementedError

    def check_accounting(self) -> None:
        if self.lb is None:
            return
        held = self.held_per_instance()
        for ident, instance in self.instances.items():
            assert instance.load == held.get(ident, 0), (ident, instance.load, held)
            assert 0 <= instance.load <= instance.capacity

    @invariant()
    def loads_match_held_leases(self) -> None:
        self.check_accounting()

    def queued(self) -> int:
        pool = self.lb._pools.get(POOL) if self.lb is not None else None
        return 0 if pool is None else len(pool.waiters)

    def check_free_capacity_is_usable(self) -> None:
        """With nothing held, every registered instance serves up to its capacity."""
        for ident in IDS:
            if ident not in self.registered:
                self.lb.register(self.instances[ident])
                self.registered.add(ident)
            self.lb.restore(POOL, ident)
        taken = [
            self.lb.try_acquire(POOL)
            for _ in range(sum(i.capacity for i in self.instances.values()))
        ]
        assert all(t is not None for t in taken)
        assert self.lb.try_acquire(POOL) is None
        for instance in taken:
            self.lb.release(instance)
        assert all(i.load == 0 for i in self.instances.values())


class SyncBalancerMachine(_Base):
    """One main thread that holds leases in ``with`` blocks and blocks in ``acquire``,
    helper threads that release, eject, deregister or send it a signal meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[Generator[Any, Any, None], AgentInstance]] = []
        self.armed = False
        self.to_raise: type[BaseException] = Interrupted

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.armed:
            raise self.to_raise("interrupted while waiting")

    def held_per_instance(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, instance in self.held:
            counts[instance.id] = counts.get(instance.id, 0) + 1
        return counts

    def _enter(self, lease: Lease[Any]) -> tuple[Any, BaseException | None]:
        """Enter ``lease``'s ``with`` block in a suspended generator; record a hold."""
        gen = holding(lease)
        raised: BaseException | None = None
        got = None
        self.armed = True
        try:
            try:
                got = next(gen)
            finally:
                self.armed = False  # a signal arriving later is ignored
        except (Interrupted, KeyboardInterrupt, BalancerError) as exc:
            raised = exc
        if inspect.getgeneratorstate(gen) == inspect.GEN_SUSPENDED:
            if lease.instance is None:
                gen.close()  # a non-blocking lease that got nothing
            else:
                self.held.append((gen, lease.instance))
                got = lease.instance
        else:
            assert lease.instance is None
        return got, raised

    @rule()
    def acquire_without_waiting(self) -> None:
        self._enter(self.lb.acquire(POOL, block=False))

    @rule(pick=st.integers(0, 7), how=st.sampled_from([None, Failure, asyncio.CancelledError]))
    def release(self, pick: int, how: type[BaseException] | None) -> None:
        if not self.held:
            return
        gen, _ = self.held.pop(pick % len(self.held))
        with pytest.raises((StopIteration, Failure, asyncio.CancelledError)):
            gen.send(None if how is None else how())

    @rule(
        ending=st.sampled_from(
            [
                "timeout",
                "interrupt",
                "release",
                "release_then_interrupt",
                "eject_all",
                "deregister_all",
            ]
        ),
        interrupt=st.sampled_from([KeyboardInterrupt, Interrupted]),
    )
    def acquire_and_wait(self, ending: str, interrupt: type[BaseException]) -> None:
        """Block in ``acquire`` while a helper thread ends the wait one way or another."""
        releasable = [(gen, i) for gen, i in self.held if i.id in self.registered and i.healthy]
        if ending.startswith("release") and not releasable:
            ending = "timeout"
        self.to_raise = interrupt
        main = threading.get_ident()
        done = threading.Event()
        lb = self.lb
        pool = lb._pools.get(POOL)
        if pool is None:
            return

        def helper(performed: threading.Event) -> None:
            while not pool.waiters:
                if done.wait(0.0005):
                    return  # served (or refused) at once, without waiting
            performed.set()
            if ending.startswith("release"):
                gen, _ = releasable[0]
                with pytest.raises(StopIteration):
                    gen.send(None)
            if ending.endswith("interrupt"):
                signal.pthread_kill(main, signal.SIGUSR1)
            elif ending == "eject_all":
                for ident in list(self.registered):
                    lb.eject(POOL, ident)
            elif ending == "deregister_all":
                for ident in list(self.registered):
                    lb.deregister(POOL, ident)

        performed = threading.Event()
        thread = threading.Thread(target=helper, args=(performed,))
        thread.start()
        timeout = 0.02 if ending == "timeout" else 5.0
        try:
            got, raised = self._enter(lb.acquire(POOL, timeout=timeout))
        finally:
            done.set()
            thread.join()
        if not performed.is_set():
            return  # served or refused at once: the helper did nothing
        if ending.startswith("release"):
            self.held.remove(releasable[0])
        if ending == "deregister_all":
            self.registered.clear()
        if ending == "timeout":
            assert isinstance(raised, NoCapacityError)
        elif ending == "interrupt":
            assert isinstance(raised, interrupt)
        elif ending == "release":
            assert got is not None
        elif ending == "release_then_interrupt":
            assert got is not None or isinstance(raised, interrupt)
        else:
            assert isinstance(raised, NoHealthyInstanceError)

    @invariant()
    def no_waiter_stays_queued(self) -> None:
        if self.lb is not None:
            assert self.queued() == 0

    def teardown(self) -> None:
        if self.lb is None:
            return
        for gen, _ in self.held:
            with pytest.raises(StopIteration):
                gen.send(None)
        self.held.clear()
        assert all(i.load == 0 for i in self.instances.values())
        self.check_free_capacity_is_usable()


class AsyncBalancerMachine(_Base):
    """Tasks waiting in ``async with``, cancelled, timing out and served, releases from
    this loop and from other threads, on one event loop the test drives step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tasks: list[asyncio.Task[None]] = []
        self.holding: dict[asyncio.Task[None], AgentInstance] = {}
        self.finish: dict[asyncio.Task[None], asyncio.Future[BaseException | None]] = {}
        self.raw: list[AgentInstance] = []

    def after_change(self) -> None:
        self.settle()

    def settle(self, seconds: float = 0.0) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))

    def held_per_instance(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in [*self.holding.values(), *self.raw]:
            counts[instance.id] = counts.get(instance.id, 0) + 1
        return counts

    async def _hold(self, timeout: float | None, finish: asyncio.Future[Any]) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            async with self.lb.acquire(POOL, timeout=timeout) as instance:
                self.holding[task] = instance
                try:
                    how = await finish
                    if how is not None:
                        raise how
                finally:
                    del self.holding[task]
        except (BalancerError, Failure):
            pass

    @rule(timeout=st.sampled_from([None, 0.005]))
    def start_waiting_task(self, timeout: float | None) -> None:
        finish = self.loop.create_future()
        task = self.loop.create_task(self._hold(timeout, finish))
        self.tasks.append(task)
        self.finish[task] = finish
        self.settle()

    @rule(pick=st.integers(0, 7))
    def cancel_task(self, pick: int) -> None:
        live = [t for t in self.tasks if not t.done()]
        if live:
            live[pick % len(live)].cancel()
            self.settle()

    @rule(pick=st.integers(0, 7), how=st.sampled_from([None, Failure]))
    def finish_task(self, pick: int, how: type[BaseException] | None) -> None:
        holders = list(self.holding)
        if holders:
            task = holders[pick % len(holders)]
            self.finish[task].set_result(None if how is None else how())
            self.settle()

    @rule()
    def time_passes(self) -> None:
        self.settle(0.01)  # tasks with a timeout give up

    @rule()
    def take_without_lease(self) -> None:
        try:
            instance = self.lb.try_acquire(POOL)
        except BalancerError:
            return
        if instance is not None:
            self.raw.append(instance)
        self.settle()

    @rule(pick=st.integers(0, 7), from_thread=st.booleans(), cancel_first_waiter=st.booleans())
    def release_raw(self, pick: int, from_thread: bool, cancel_first_waiter: bool) -> None:
        """A release, possibly from another thread, possibly racing a cancellation."""
        if not self.raw:
            return
        instance = self.raw.pop(pick % len(self.raw))
        if from_thread:
            thread = threading.Thread(target=self.lb.release, args=(instance,))
            thread.start()
            thread.join()
        else:
            self.lb.release(instance)
        if cancel_first_waiter:  # before the loop runs the hand-over scheduled above
            waiting = [t for t in self.tasks if not t.done() and t not in self.holding]
            if waiting:
                waiting[0].cancel()
        self.settle()

    @invariant()
    def queued_waiters_are_the_waiting_tasks(self) -> None:
        if self.lb is not None:
            waiting = [t for t in self.tasks if not t.done() and t not in self.holding]
            assert self.queued() <= len(waiting)
            if self.queued() < len(waiting):  # only tasks whose hand-over is in flight
                self.settle()
                waiting = [t for t in self.tasks if not t.done() and t not in self.holding]
                assert self.queued() == len(waiting)

    def teardown(self) -> None:
        try:
            if self.lb is not None:
                for task in self.tasks:
                    if task in self.holding:
                        self.finish[task].set_result(None)
                    else:
                        task.cancel()
                self.settle()
                for instance in self.raw:
                    self.lb.release(instance)
                self.raw.clear()
                assert all(t.done() for t in self.tasks)
                assert self.queued() == 0
                assert all(i.load == 0 for i in self.instances.values())
                self.check_free_capacity_is_usable()
        finally:
            self.loop.close()


@pytest.fixture
def signal_handler() -> Any:
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_sync_interleavings_leak_no_capacity_and_leave_no_waiter(signal_handler: Any) -> None:
    """Blocking acquires ended by release, timeout, interrupt, ejection or deregistration
    leave every load equal to the leases held and no waiter queued."""

    class Machine(SyncBalancerMachine):
        def __init__(self) -> None:
            super().__init__()
            signal.signal(signal.SIGUSR1, self.on_signal)

    run_state_machine_as_test(Machine, settings=SETTINGS)


def test_async_interleavings_leak_no_capacity_and_leave_no_waiter() -> None:
    """Waiting tasks cancelled, timed out and served (also from other threads) leave
    every load equal to the leases held and no waiter queued."""
    run_state_machine_as_test(AsyncBalancerMachine, settings=SETTINGS)
