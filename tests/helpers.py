"""Process and network helpers shared by the tests: free loopback ports, processes
started in their own process group and always stopped by PID, waiting for HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
#: Test applications, as files: ``tests/apps/<name>/``, copied into a temp dir per test.
APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent


def copy_app(name: str, destination: Path) -> Path:
    """Copy the test application ``tests/apps/<name>/`` into ``destination``; return it."""
    shutil.copytree(APPS / name, destination, dirs_exist_ok=True)
    return destination


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop ``proc`` (and its process group) by PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@contextlib.contextmanager
def running(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Start ``args`` in a new process group; stop it by PID however the block ends."""
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(log, "wb")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            stop(proc)


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_http(
    url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None, log: Path | None = None
) -> str:
    """GET ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            raise AssertionError(
                f"process exited with {proc.returncode} before {url} answered\n{detail}"
            )
        try:
            return http_get(url)
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
            time.sleep(0.1)
    detail = log.read_text(errors="replace") if log and log.exists() else ""
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}\n{detail}")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment minus any OTEL_/AGENTSTAT_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSTAT_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on ``port``, from /proc/net/tcp (no traffic)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, _, hex_port = fields[1].partition(":")
        if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


Samples = dict[tuple[str, frozenset], float]


def run_instrumented_app(
    app_dir: Path, env: dict[str, str], port: int, done_timeout: float = 15.0
) -> tuple[Samples, set[str]]:
    """Run ``app_dir/app.py DONE`` under the real opentelemetry-instrument until it writes
    DONE; return its /metrics samples (keyed by name and labels, empty and otel_scope
    labels dropped: an absent label and an empty one are the same series to Prometheus)
    and the addresses the endpoint listened on. ``done_timeout`` leaves room for
    frameworks that take seconds to import on a loaded machine (CrewAI: 6-12 s)."""
    from prometheus_client.parser import text_string_to_metric_families

    done, log = app_dir / "done", app_dir / "app.log"
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "app.py", str(done)]
    with running(args, env=env, cwd=app_dir, log=log) as proc:
        url = f"http://{LOOPBACK}:{port}/metrics"
        wait_http(url, timeout=max(30.0, done_timeout / 2), proc=proc, log=log)
        deadline = time.monotonic() + done_timeout
        while not done.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists(), log.read_text()
        page = wait_http(url, proc=proc, log=log)
        listeners = listening_addresses(port)
    samples: Samples = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            labels = {
                k: v for k, v in sample.labels.items() if v and not k.startswith("otel_scope")
            }
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples, listeners


def run_in_threads(work: Callable[[], object], threads: int = 8) -> None:
    """Run ``work`` in ``threads`` threads at once with a 1 µs switch interval (threads
    switch inside every hot path), and wait for them."""
    pool = [threading.Thread(target=work) for _ in range(threads)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
