"""The benchmarks' frameworks section runs against the real frameworks (timings are
never asserted: benchmarks are not tests)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.helpers import REPO, clean_env

FRAMEWORKS = {"pydantic-ai": "pydantic_ai", "openai-agents": "agents", "LangGraph": "langgraph"}


@pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in FRAMEWORKS.values()),
    reason="needs pydantic-ai, openai-agents and langgraph (see scripts/test)",
)
def test_frameworks_section_measures_every_installed_framework() -> None:
    """`python -m benchmarks --smoke --only frameworks` exits 0 and judges each framework's
    added cost per run, none skipped."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "frameworks"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[frameworks] FAILED" not in proc.stdout
    for label in FRAMEWORKS:
        assert f"{label}: added cost per run" in proc.stdout, proc.stdout
        assert f"{label}: skipped" not in proc.stdout
