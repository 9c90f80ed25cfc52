"""Your own duration buckets: one setting (``AGENTSTAT_DURATION_BUCKETS`` or
``duration_buckets`` in ``[tool.agentstat]``) read alike by the instrumentation,
``agentstat rules`` and ``agentstat check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentstat import semconv
from agentstat.errors import ConfigError
from agentstat.instrumentation.config import duration_buckets, with_duration_buckets
from tests.helpers import clean_env

# Records one call of 1.5 s into a fresh process's store and prints the page's le values.
_APP = """
import re
from prometheus_client import CollectorRegistry
import agentstat
from agentstat._metrics.store import STORE
from agentstat import semconv
from tests.helpers import http_get

STORE.histogram(semconv.AGENT_DURATION).series(("invoke_agent", "a", "")).observe(1.5)
server = agentstat.start_metrics_server(port=0, registry=CollectorRegistry(), set_global=False)
page = http_get(server.url)
server.shutdown()
name = semconv.AGENT_DURATION.bucket
print(" ".join(re.findall(name + r'{.*le="([^"]+)"', page)))
"""


def _page_bounds(cwd: Path, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _APP],
        cwd=cwd,
        env=clean_env(PYTHONPATH=str(Path(__file__).parent.parent), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_instrumentation_uses_the_environment_bounds(tmp_path: Path) -> None:
    """AGENTSTAT_DURATION_BUCKETS sets the bounds the duration histograms export."""
    bounds = _page_bounds(tmp_path, AGENTSTAT_DURATION_BUCKETS="0.5,1,2,5")
    assert bounds == ["0.5", "1.0", "2.0", "5.0", "+Inf"]


def test_instrumentation_uses_pyproject_bounds_and_keeps_defaults_on_a_bad_value(
    tmp_path: Path,
) -> None:
    """duration_buckets in [tool.agentstat] works the same; a bad value is logged and the
    defaults are kept, the application runs."""
    (tmp_path / "pyproject.toml").write_text("[tool.agentstat]\nduration_buckets = [1, 3]\n")
    assert _page_bounds(tmp_path) == ["1.0", "3.0", "+Inf"]
    (tmp_path / "pyproject.toml").write_text('[tool.agentstat]\nduration_buckets = "3,1"\n')
    defaults = [semconv.le_label(b) for b in semconv.DURATION_BUCKETS]
    assert _page_bounds(tmp_path) == [*defaults, "+Inf"]


def test_the_environment_wins_over_toml(tmp_path: Path) -> None:
    """As for every setting: the environment variable beats the TOML key."""
    (tmp_path / "pyproject.toml").write_text("[tool.agentstat]\nduration_buckets = [1, 3]\n")
    assert duration_buckets({"AGENTSTAT_DURATION_BUCKETS": "2"}, tmp_path) == (2.0,)
    assert duration_buckets({}, tmp_path) == (1.0, 3.0)
    assert duration_buckets({}, tmp_path / "nowhere") == semconv.DURATION_BUCKETS


@pytest.mark.parametrize(
    ("value", "message"),
    [("1,x", "not a list of numbers"), ("0,1", "positive"), ("1,1", "must increase")],
)
def test_bad_bounds_are_refused_with_their_source(value: str, message: str) -> None:
    """A malformed value names the variable and the problem."""
    with pytest.raises(ConfigError, match=message) as caught:
        duration_buckets({"AGENTSTAT_DURATION_BUCKETS": value}, Path("/nonexistent"))
    assert "AGENTSTAT_DURATION_BUCKETS" in str(caught.value)


def test_only_default_duration_histograms_take_the_setting() -> None:
    """Time to first chunk and balancer waits keep their own bounds."""
    for spec in (semconv.AGENT_TIME_TO_FIRST_CHUNK, semconv.BALANCER_WAIT):
        assert with_duration_buckets(spec) is spec
