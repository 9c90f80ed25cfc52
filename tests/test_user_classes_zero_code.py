"""The user's own duck-typed cache and balancer classes, measured with no code change:
the real ``opentelemetry-instrument`` in a subprocess, counts read from /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentstat import semconv
from tests.helpers import clean_env, copy_app, free_port, run_instrumented_app


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    copy_app("user_classes", tmp_path)
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
