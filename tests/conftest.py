"""Shared fixtures: a fresh MeterProvider with an in-memory reader per test, a clean
agentstat state (store, caps, instrumentor) before and after, and a fresh copy of the
users' app module."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import agentstat.testing
from tests.helpers import APPS


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


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    """A fresh importable copy of ``tests/apps/usersapp/usersapp.py`` for each test."""
    name = f"usersapp_{abs(hash(tmp_path)) % 10**8}"
    shutil.copy(APPS / "usersapp" / "usersapp.py", tmp_path / f"{name}.py")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
