"""The zero-code path, end to end: the real ``opentelemetry-instrument`` in a subprocess,
a small app that imports its agents only after start-up, and /metrics read over HTTP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agentstat import semconv
from tests.helpers import BIN, clean_env, copy_app, free_port, run_instrumented_app

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return copy_app("zero_code", tmp_path)


def _labels(name_label: str, name: str, operation: str, error: str = "", le: str | None = None):
    labels = {semconv.prometheus_label(semconv.GEN_AI_OPERATION_NAME): operation, name_label: name}
    if error:
        labels[semconv.prometheus_label(semconv.ERROR_TYPE)] = error
    if le is not None:
        labels["le"] = le
    return frozenset(labels.items())


def _agent(name: str, error: str = "", le: str | None = None) -> frozenset:
    return _labels(AGENT.label(semconv.GEN_AI_AGENT_NAME), name, "invoke_agent", error, le)


def test_documented_command_serves_exact_counts_on_127_0_0_1(app_dir: Path) -> None:
    """`AGENTSTAT_AGENTS=... AGENTSTAT_TOOLS=... opentelemetry-instrument python app.py`
    with no OTEL_* variable serves exact counts, buckets and error types on 127.0.0.1:9464."""
    env = clean_env(
        AGENTSTAT_AGENTS="fleet_agents:plan,fleet_agents:Researcher.run=researcher",
        AGENTSTAT_TOOLS="fleet_agents:search",
    )
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 9464)) == 0:
            pytest.fail(
                "port 9464 is taken; the documented default port must be free for this test"
            )
    samples, listeners = run_instrumented_app(app_dir, env, 9464)

    assert samples[(AGENT.count, _agent("plan"))] == 5
    assert samples[(AGENT.count, _agent("plan", "ValueError"))] == 3
    assert samples[(AGENT.count, _agent("plan", "KeyError"))] == 1
    assert samples[(AGENT.count, _agent("researcher"))] == 2
    # 0.3 s is inside le="0.5"; 0.6 s only from le="1.0": the targets' buckets are exact
    assert samples[(AGENT.bucket, _agent("researcher", le="0.25"))] == 0
    assert samples[(AGENT.bucket, _agent("researcher", le="0.5"))] == 1
    assert samples[(AGENT.bucket, _agent("researcher", le="1.0"))] == 2
    assert samples[(AGENT.bucket, _agent("plan", le="0.005"))] == 5
    assert 0.9 <= samples[(AGENT.sum, _agent("researcher"))] < 1.5
    tool = _labels(TOOL.label(semconv.GEN_AI_TOOL_NAME), "search", "execute_tool")
    assert samples[(TOOL.count, tool)] == 4

    # bound to loopback only: the kernel lists the listener as 127.0.0.1:9464
    assert listeners == {"127.0.0.1"}


def test_disabled_instrumentations_turns_agentstat_off(app_dir: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat leaves the app unwrapped."""
    port = free_port()
    env = clean_env(
        AGENTSTAT_AGENTS="fleet_agents:plan",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="agentstat",
    )
    samples, _ = run_instrumented_app(app_dir, env, port)
    assert not [key for key in samples if key[0].startswith(AGENT.prometheus_name)]


def test_bad_target_is_logged_and_the_app_still_runs(app_dir: Path) -> None:
    """A missing attribute logs one line naming the entry; the good target is still wrapped."""
    port = free_port()
    env = clean_env(
        AGENTSTAT_AGENTS="fleet_agents:nope,fleet_agents:plan",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
    )
    samples, _ = run_instrumented_app(app_dir, env, port)
    assert samples[(AGENT.count, _agent("plan"))] == 5
    log = (app_dir / "app.log").read_text()
    assert (
        "agentstat: skipping agent entry 'fleet_agents:nope': fleet_agents has no attribute 'nope'"
        in log
    )


def test_strict_mode_stops_the_app_at_start_up(app_dir: Path) -> None:
    """AGENTSTAT_STRICT=1 with a bad target: the app never runs and the reason is printed."""
    import subprocess

    env = clean_env(
        AGENTSTAT_AGENTS="no_such_module_at_all:plan",
        AGENTSTAT_STRICT="1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()),
    )
    done = app_dir / "done"
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "app.py", str(done)],
        env=env, cwd=app_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert not done.exists()
    assert "cannot instrument agent entry 'no_such_module_at_all:plan'" in result.stderr
    assert "module 'no_such_module_at_all' cannot be found" in result.stderr
