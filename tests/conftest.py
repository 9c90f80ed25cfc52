"""Shared fixtures: a fresh MeterProvider with an in-memory reader per test, and a clean
agentstat state (store, caps, instrumentor) before and after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentstat import _runtime_metrics, _wrappers
from agentstat.aggregation import STORE
from agentstat.instrumentation import AgentstatInstrumentor


def _reset() -> None:
    instrumentor = AgentstatInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    STORE.reset()
    _wrappers.CAPS.reset()
    _runtime_metrics.reset_caps()
    _wrappers.set_tracer(None)


@pytest.fixture(autouse=True)
def clean_agentstat() -> Iterator[None]:
    _reset()
    yield
    _reset()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()
