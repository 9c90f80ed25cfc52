"""Choosing an instance: the four strategies and the indexes they keep per pool.

Every method runs under the balancer's lock. Each ``_next_*`` chooses an instance of a
pool whose ``available`` list is not empty, takes one unit of it (load, selection
count) and re-indexes it: what :meth:`_Selection._update` does after a take,
specialised per strategy. A chosen instance is available, so it is healthy and below
capacity before the take. Each is O(1) or O(log n), never a scan of the pool:

- round robin: a ring of instances with free capacity;
- least loaded: a heap on ``load / capacity`` with lazy invalidation (``_version``);
  ties go to the instance idle longest;
- weighted: sampling on static weights (bisect), accepted with probability free share;
  after 16 rejections (a nearly full pool) power of two choices;
- power of two: the less loaded of two random instances with free capacity.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator
from heapq import heappop, heapreplace
from itertools import accumulate
from typing import TYPE_CHECKING

from agentstat.runtime.balancer._instance import AgentInstance, Strategy

if TYPE_CHECKING:
    from agentstat.runtime.balancer._pool import _Pool

_WEIGHTED_TRIES = 16


class _Selection:
    """Strategy selection and index bookkeeping (a part of :class:`LoadBalancer`)."""

    strategy: Strategy
    _seq: Iterator[int]
    _random: random.Random
    _round_robin: bool
    _least_loaded: bool

    def _selector(self) -> Callable[[_Pool], AgentInstance]:
        """Choose + take in one call: the fast path of every acquisition."""
        return {
            Strategy.ROUND_ROBIN: self._next_round_robin,
            Strategy.LEAST_LOADED: self._next_least_loaded,
            Strategy.WEIGHTED: self._next_weighted,
            Strategy.POWER_OF_TWO: self._next_two_choices,
        }[self.strategy]

    # -- indexes -----------------------------------------------------------------------

    def _update(self, pool: _Pool, instance: AgentInstance) -> None:
        """Re-index ``instance`` after its load or health changed."""
        if instance.healthy and instance.load < instance.capacity:
            if instance._slot < 0:
                instance._slot = len(pool.available)
                pool.available.append(instance)
            if self._round_robin:
                if not instance._in_ring:
                    instance._in_ring = True
                    pool.ring.append(instance)
            elif self._least_loaded:
                instance._version += 1
                entry = (
                    instance.load / instance.capacity,
                    next(self._seq),
                    instance._version,
                    instance,
                )
                heap = pool.heap
                if heap and heap[0][3] is instance:  # just selected: replace, one sift
                    heapq.heapreplace(heap, entry)
                else:  # its older entry stays behind, stale, until it surfaces
                    heapq.heappush(heap, entry)
                    if len(heap) > 4 * len(pool.instances) + 64:
                        self._compact_heap(pool)
        else:
            self._unavail(pool, instance)
            instance._version += 1

    def _unavail(self, pool: _Pool, instance: AgentInstance) -> None:
        slot = instance._slot
        if slot < 0:
            return
        last = pool.available.pop()
        if last is not instance:
            pool.available[slot] = last
            last._slot = slot
        instance._slot = -1

    def _compact_heap(self, pool: _Pool) -> None:
        """Drop stale entries (one O(n) pass every ~3n releases: amortised O(1))."""
        heap = [e for e in pool.heap if e[2] == e[3]._version and e[3]._slot >= 0]
        heapq.heapify(heap)
        pool.heap = heap

    def _reweigh(self, pool: _Pool) -> None:
        if self.strategy is Strategy.WEIGHTED:
            pool.healthy = [i for i in pool.instances.values() if i.healthy]
            pool.cumulative = list(accumulate(i.weight for i in pool.healthy))

    def _add_weight(self, pool: _Pool, instance: AgentInstance) -> None:
        """A healthy instance joined: O(1) append, not a rebuild."""
        if self.strategy is Strategy.WEIGHTED:
            total = pool.cumulative[-1] if pool.cumulative else 0.0
            pool.healthy.append(instance)
            pool.cumulative.append(total + instance.weight)

    # -- selection + taking --------------------------------------------------------------

    def _next_round_robin(self, pool: _Pool) -> AgentInstance:
        ring = pool.ring
        while True:
            instance = ring.popleft()
            if instance._slot >= 0:
                break
            instance._in_ring = False  # saturated or ejected: back in when it frees up
        ring.append(instance)
        return self._take(pool, instance)

    def _next_least_loaded(self, pool: _Pool) -> AgentInstance:
        heap = pool.heap
        while True:
            _, _, version, instance = heap[0]
            if version == instance._version and instance._slot >= 0:
                break
            heappop(heap)
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        version = instance._version = version + 1
        capacity = instance.capacity
        if load < capacity:  # its entry is the top: replace it, one sift
            heapreplace(heap, (load / capacity, next(self._seq), version, instance))
        else:  # the top entry is stale now; the next selection pops it
            self._unavail(pool, instance)
        return instance

    def _next_two_choices(self, pool: _Pool) -> AgentInstance:
        return self._take(pool, self._two_choices(pool))

    def _next_weighted(self, pool: _Pool) -> AgentInstance:
        healthy, cumulative = pool.healthy, pool.cumulative
        total = cumulative[-1]
        rand = self._random.random
        for _ in range(_WEIGHTED_TRIES):
            try:
                instance = healthy[bisect_right(cumulative, rand() * total)]
            except IndexError:  # rand() * total rounded up to total
                instance = healthy[-1]
            capacity = instance.capacity
            if instance._slot >= 0 and rand() * capacity < capacity - instance.load:
                break
        else:
            instance = self._two_choices(pool)
        return self._take(pool, instance)

    def _take(self, pool: _Pool, instance: AgentInstance) -> AgentInstance:
        """One unit of the chosen ``instance``: its load and selection count go up; at
        capacity it leaves ``available`` (its heap entry, if any, goes stale)."""
        load = instance.load = instance.load + 1
        instance._counts.selections += 1  # type: ignore[union-attr]
        if load >= instance.capacity:
            self._unavail(pool, instance)
            instance._version += 1
        return instance

    def _two_choices(self, pool: _Pool) -> AgentInstance:
        available = pool.available
        n = len(available)
        rand = self._random.random
        first = available[int(rand() * n)]
        if n == 1:
            return first
        second = available[int(rand() * n)]
        if second.load * first.capacity < first.load * second.capacity:
            return second
        return first
