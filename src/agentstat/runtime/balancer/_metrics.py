"""The balancer's metrics, kept where they cost least.

Per pool: a rejection count and the wait-duration histogram series; per instance: a
selection count. They are plain integers bumped under the balancer's lock (selections
in the strategies, rejections where an acquisition gives up), read by OpenTelemetry at
collection time together with each live instance's load, capacity and health. This
module creates and registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentstat._metrics.counts import COUNTS, InstanceCounts, PoolCounts
from agentstat._metrics.histograms import HistogramSeries
from agentstat._metrics.store import STORE
from agentstat.semconv import BALANCER_WAIT

if TYPE_CHECKING:
    from agentstat.runtime.balancer._instance import AgentInstance


def pool_metrics(name: str, owner: object) -> tuple[PoolCounts, HistogramSeries]:
    """The rejection counts (reported while ``owner`` lives) and wait series of a pool."""
    counts = PoolCounts(name)
    COUNTS.register(counts, owner)
    return counts, STORE.histogram(BALANCER_WAIT).series((counts.pool,))


def activate(instance: AgentInstance, pool: str) -> None:
    """Report ``instance`` in ``pool``: its selections go on from where they were if it
    was registered under the same labels before, else it gets new counts."""
    counts = instance._counts
    if counts is None or not counts.labels_match(pool, instance.id):
        counts = instance._counts = InstanceCounts(pool, instance.id)
        COUNTS.register(counts, instance)
    counts.active = True


def deactivate(instance: AgentInstance) -> None:
    """Deregistered: its selections stay reported (monotonic), its gauges stop."""
    assert instance._counts is not None
    instance._counts.active = False
