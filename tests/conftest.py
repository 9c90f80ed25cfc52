"""Shared fixtures: a fresh MeterProvider with an in-memory reader per test, and a clean
agentstat state (store, caps, instrumentor) before and after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import agentstat.testing


@pytest.fixture(autouse=True)
def clean_agentstat() -> Iterator[None]:
    agentstat.testing.reset()
    yield
    agentstat.testing.reset()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()
