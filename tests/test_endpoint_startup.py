"""The endpoint under the real opentelemetry-instrument: a bad or taken port is one line and
the app runs (strict: exit 2 before user code); two servers on one host stay apart."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import (
    BIN,
    LOOPBACK,
    REPO,
    clean_env,
    free_port,
    http_get,
    running,
    wait_http,
)
from tests.test_multiprocess_servers import page_totals

APPS = REPO / "tests" / "apps" / "multiprocess"


def run_app(port: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        AGENTSTAT_AGENTS="mp_agents:planner",
        OTEL_EXPORTER_PROMETHEUS_PORT=port,
        PYTHONPATH=str(APPS),
        **extra,
    )
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "record_twice.py"]
    return subprocess.run(args, env=env, cwd=APPS, capture_output=True, text=True, timeout=60)


def agentstat_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("port", "reason"),
    [
        ("abc", "is not a port number"),
        ("70000", "is out of range (0 to 65535)"),
        ("taken", "Address already in use"),
    ],
)
def test_bad_port_is_one_line_and_the_app_runs_and_records(port: str, reason: str) -> None:
    """One stderr line naming the setting, value and reason; calls still recorded; exit 0."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        value = str(holder.getsockname()[1]) if port == "taken" else port
        result = run_app(value)
    assert result.returncode == 0, result.stderr
    lines = agentstat_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in lines[0] and repr(value) in lines[0]
    assert reason in lines[0] and "not served" in lines[0]
    assert result.stdout.strip() == "calls=2"  # the target was wrapped and recorded


@pytest.mark.parametrize("port", ["abc", "70000", "taken"])
def test_bad_port_under_strict_exits_2_before_user_code(port: str) -> None:
    """AGENTSTAT_STRICT=1: the same line, exit code 2, and the app never ran."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        value = str(holder.getsockname()[1]) if port == "taken" else port
        result = run_app(value, AGENTSTAT_STRICT="1")
    assert result.returncode == 2, result.stderr
    lines = agentstat_lines(result.stderr)
    assert len(lines) == 1 and "OTEL_EXPORTER_PROMETHEUS_PORT" in lines[0], result.stderr
    assert "AGENTSTAT_STRICT" in lines[0]
    assert result.stdout == ""


def pool_app(where: Path, calls: int) -> tuple[list[str], dict[str, str], Path, int]:
    """Arguments, environment, done-file and metrics port of one instrumented pool app."""
    where.mkdir()
    port = free_port()
    env = clean_env(
        AGENTSTAT_AGENTS="mp_agents:planner",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        PYTHONPATH=str(APPS),
    )
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "pool.py", "fork"]
    return [*args, str(calls), str(where / "done")], env, where / "done", port


def test_two_servers_on_one_host_keep_their_own_counts(tmp_path: Path) -> None:
    """Two instrumented pool apps at once: each page has exactly its own calls."""
    a_args, a_env, a_done, a_port = pool_app(tmp_path / "a", 8)
    b_args, b_env, b_done, b_port = pool_app(tmp_path / "b", 12)
    with (
        running(a_args, env=a_env, cwd=APPS, log=tmp_path / "a.log") as a,
        running(b_args, env=b_env, cwd=APPS, log=tmp_path / "b.log") as b,
    ):
        seen = []
        for proc, done, port in ((a, a_done, a_port), (b, b_done, b_port)):
            deadline = time.monotonic() + 60
            while not done.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert done.exists()
            seen.append(page_totals(http_get(f"http://{LOOPBACK}:{port}/metrics"))["count"])
    assert seen == [8.0, 12.0]


def test_bad_port_under_uvicorn_workers_is_said_once(tmp_path: Path) -> None:
    """uvicorn --workers 2 with a bad port: one line for the server, none per worker."""
    app_port = free_port()
    env = clean_env(
        AGENTSTAT_AGENTS="mp_agents:planner",
        OTEL_EXPORTER_PROMETHEUS_PORT="abc",
        PYTHONPATH=str(APPS),
    )
    args = [
        str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"), "--workers", "2",
        "--host", LOOPBACK, "--port", str(app_port), "asgi:app",
    ]  # fmt: skip
    log = tmp_path / "uvicorn.log"
    with running(args, env=env, cwd=APPS, log=log) as proc:
        wait_http(f"http://{LOOPBACK}:{app_port}/health", proc=proc, log=log)
        assert http_get(f"http://{LOOPBACK}:{app_port}/fast")
        time.sleep(1)  # both workers have started by now
    lines = [line for line in log.read_text().splitlines() if "PROMETHEUS_PORT" in line]
    assert len(lines) == 1, log.read_text()


def test_serving_process_keeps_the_default_sigterm_disposition() -> None:
    """The process serving /metrics installs no SIGTERM handler: the app dies of SIGTERM
    exactly as it would without agentstat."""
    env = clean_env(
        AGENTSTAT_AGENTS="mp_agents:planner",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()),
        PYTHONPATH=str(APPS),
    )
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "sigterm_handler.py"]
    done = subprocess.run(args, env=env, cwd=APPS, capture_output=True, text=True, timeout=60)
    assert "sigterm=<Handlers.SIG_DFL: 0>" in done.stdout, done.stdout + done.stderr
