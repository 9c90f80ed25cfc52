"""The state of one pool: its instances, the strategies' indexes, waiters and counts."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from agentstat.runtime.balancer import _metrics

if TYPE_CHECKING:
    from agentstat.runtime.balancer._instance import AgentInstance
    from agentstat.runtime.balancer._leases import _Waiter


class _Pool:
    """Instances of one agent type and the per-strategy indexes over them."""

    def __init__(self, name: str, owner: object) -> None:
        self.name = name
        self.instances: dict[str, AgentInstance] = {}
        self.available: list[AgentInstance] = []  # healthy, load < capacity; swap-remove
        self.healthy_count = 0
        self.ring: deque[AgentInstance] = deque()  # ROUND_ROBIN
        self.heap: list[tuple[float, int, int, AgentInstance]] = []  # LEAST_LOADED
        self.healthy: list[AgentInstance] = []  # WEIGHTED: aligned with cumulative
        self.cumulative: list[float] = []
        self.ejected: list[tuple[float, int, AgentInstance]] = []  # (until, seq, instance)
        self.waiters: deque[_Waiter] = deque()
        self.counts, self.wait = _metrics.pool_metrics(name, owner)
