"""Fixtures for the framework integration tests: each test runs with its framework's
integration switched on, and off again afterwards (the root conftest resets the rest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def instrument() -> Iterator[Callable[[type], Any]]:
    """Switch on the given FrameworkInstrumentor classes for this test."""
    switched: list[Any] = []

    def switch_on(*classes: type) -> None:
        for cls in classes:
            instrumentor = cls()
            instrumentor.instrument()
            switched.append(instrumentor)

    yield switch_on
    for instrumentor in reversed(switched):
        instrumentor.uninstrument()
