"""An integration hooks its framework's import name; a user's own module of that name is
not the framework and is left alone."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from agentstat.integrations.openai_agents import OpenAIAgentsInstrumentor


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(_installed("openai-agents"), reason="needs openai-agents absent")
def test_a_user_module_named_like_a_framework_is_left_alone(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    meter_provider: MeterProvider,
) -> None:
    """A top-level ``agents`` module of the user's (openai-agents' import name) imports
    and works as before, with no warning from agentstat."""
    (tmp_path / "agents.py").write_text("def plan():\n    return 'planned'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    instrumentor = OpenAIAgentsInstrumentor()
    with caplog.at_level(logging.DEBUG, logger="agentstat"):
        # skip_dep_check: as opentelemetry-instrument loads every instrumentor
        instrumentor.instrument(skip_dep_check=True, meter_provider=meter_provider)
        try:
            module = importlib.import_module("agents")
            assert module.plan() == "planned"
        finally:
            instrumentor.uninstrument()
            sys.modules.pop("agents", None)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
