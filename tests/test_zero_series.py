"""Series whose label sets are known in advance are on the page from the start, at 0, so
dashboards read "0" instead of "No data" for a healthy pool or target."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

import agentstat
from agentstat import semconv
from tests.helpers import http_get


def test_pool_wait_and_retry_target_start_at_zero() -> None:
    """A pool that never waited and a retry target that never retried read 0 on /metrics."""
    balancer = agentstat.LoadBalancer(agentstat.Strategy.ROUND_ROBIN)
    balancer.register(agentstat.AgentInstance("zero-1", "zero-pool", capacity=2))
    balancer.release(balancer.try_acquire("zero-pool"))  # type: ignore[arg-type]

    @agentstat.retry(on=TimeoutError, attempts=3, target="zero-target")
    def never_fails() -> int:
        return 1

    never_fails()
    server = agentstat.start_metrics_server(port=0, registry=CollectorRegistry(), set_global=False)
    try:
        page = http_get(server.url)
    finally:
        server.shutdown()
    pool = semconv.BALANCER_WAIT.label(semconv.POOL_NAME)
    target = semconv.RETRY_ATTEMPTS.label(semconv.RETRY_TARGET)
    lines = page.splitlines()

    def value(name: str, label: str, owner: str) -> list[str]:
        return [
            line.rsplit(" ", 1)[1]
            for line in lines
            if line.startswith(f"{name}{{") and f'{label}="{owner}"' in line
        ]

    assert value(semconv.BALANCER_WAIT.count, pool, "zero-pool") == ["0.0"]
    assert value(semconv.RETRY_ATTEMPTS.prometheus_name, target, "zero-target") == ["0.0"]
    assert value(semconv.RETRY_GIVE_UPS.prometheus_name, target, "zero-target") == ["0.0"]
