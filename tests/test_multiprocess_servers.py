"""One exact /metrics for real pre-fork servers and process pools under opentelemetry-instrument.

Each scenario runs the real server (gunicorn, uvicorn, Celery, multiprocessing) from
``tests/apps/multiprocess`` under the real ``opentelemetry-instrument`` and reads the one
endpoint: totals equal the calls made, buckets merged across processes, through worker
recycling and a SIGKILLed worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat._metrics import multiprocess
from tests.helpers import BIN, LOOPBACK, REPO, clean_env, free_port, http_get, running, wait_http

APPS = REPO / "tests" / "apps" / "multiprocess"
AGENT = {"gen_ai_agent_name": "planner"}
FAST_BOUND = 'le="0.05"'  # fast calls end below it, slow ones (0.06 s) above


def page_totals(page: str) -> dict[str, float]:
    """Agent call count, fast-bucket count, cache lookups, and cache-size series per pid."""
    totals = {"count": 0.0, "fast": 0.0, "lookups": 0.0}
    gauges: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("gen_ai_agent_name") == "planner":
                if sample.name == semconv.AGENT_DURATION.count:
                    totals["count"] += sample.value
                elif sample.name == semconv.AGENT_DURATION.bucket and labels["le"] == "0.05":
                    totals["fast"] += sample.value
            if labels.get("agentstat_cache_name") == "mp-cache":
                if sample.name == semconv.CACHE_LOOKUPS.prometheus_name:
                    totals["lookups"] += sample.value
                elif sample.name == semconv.CACHE_SIZE.prometheus_name:
                    gauges[labels.get("process_pid", "")] = sample.value
    totals["size_series"] = float(len(gauges))
    totals["dead_gauges"] = float(sum(1 for pid in gauges if pid and not _alive(int(pid))))
    return totals


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_total(url: str, expected: int, timeout: float = 20.0) -> dict[str, float]:
    """Scrape until the agent's call count is ``expected`` (members flush once a second)."""
    deadline = time.monotonic() + timeout
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        totals = page_totals(http_get(url))
        if totals["count"] == expected:
            return totals
        assert totals["count"] < expected, f"counted more calls than made: {totals}"
        time.sleep(0.2)
    raise AssertionError(f"expected {expected} calls on {url}, last saw {totals}")


def children_of(pid: int) -> list[int]:
    """Pids of ``pid``'s child processes, from /proc."""
    found = []
    for task in Path("/proc").glob("[0-9]*/task/*/children"):
        if task.parent.name == str(pid) or task.parent.parent.parent.name == str(pid):
            found.extend(int(child) for child in task.read_text().split())
    return sorted(set(found))


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def call(app: str, fast: int, slow: int) -> set[int]:
    """Make the requests; the pids of the workers that answered."""
    pids = {int(get(f"{app}/fast")) for _ in range(fast)}
    return pids | {int(get(f"{app}/slow")) for _ in range(slow)}


def env_for(metrics_port: int, **extra: str) -> dict[str, str]:
    return clean_env(
        AGENTSTAT_AGENTS="mp_agents:planner",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        PYTHONPATH=str(APPS),
        **extra,
    )


def instrumented(*args: str) -> list[str]:
    return [str(BIN / "opentelemetry-instrument"), *args]


def assert_exact(totals: dict[str, float], fast: int, slow: int) -> None:
    assert totals["count"] == fast + slow
    assert totals["fast"] == fast, totals  # buckets merged across processes
    assert totals["lookups"] == fast + slow, totals


def kill_one_and_check(metrics: str, app: str, made: int) -> None:
    """SIGKILL a worker whose calls were flushed: the page keeps them; new calls add."""
    victim = int(get(f"{app}/fast"))
    wait_total(metrics, made + 1)
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.5)
    assert page_totals(http_get(metrics))["count"] == made + 1
    call(app, 4, 0)
    wait_total(metrics, made + 5)


@pytest.mark.parametrize(
    ("worker", "module", "extra"),
    [
        ("sync", "wsgi:app", ["--max-requests", "6"]),
        ("gthread", "wsgi:app", ["--preload", "--threads", "2"]),
        ("uvicorn.workers.UvicornWorker", "asgi:app", []),
        ("uvicorn.workers.UvicornWorker", "asgi:app", ["--preload"]),
    ],
    ids=["sync-recycling", "gthread-preload", "uvicorn-worker", "uvicorn-worker-preload"],
)
def test_gunicorn_workers_add_up_on_one_page(
    tmp_path: Path, worker: str, module: str, extra: list[str]
) -> None:
    """gunicorn -w 3 under opentelemetry-instrument: one exact page through recycling, a kill."""
    app_port, metrics_port = free_port(), free_port()
    app, metrics = f"http://{LOOPBACK}:{app_port}", f"http://{LOOPBACK}:{metrics_port}/metrics"
    args = instrumented(
        str(BIN / "gunicorn"), "-w", "3", "-k", worker, "-b", f"{LOOPBACK}:{app_port}", *extra
    )
    log = tmp_path / "gunicorn.log"
    with running([*args, module], env=env_for(metrics_port), cwd=APPS, log=log) as proc:
        wait_http(f"{app}/health", proc=proc, log=log)
        pids = call(app, 24, 6)
        totals = wait_total(metrics, 30)
        assert_exact(totals, 24, 6)
        assert 1 <= totals["size_series"] <= 4  # gauges: one series per live process
        assert totals["dead_gauges"] == 0
        if "--max-requests" in extra:
            assert len(pids) > 3, "workers were recycled"
        kill_one_and_check(metrics, app, 30)
    text = log.read_text()
    assert "Address already in use" not in text and "Traceback" not in text, text


def test_uvicorn_workers_add_up_on_one_page(tmp_path: Path) -> None:
    """uvicorn --workers 2 (spawned): one page, no "Address already in use", exact."""
    app_port, metrics_port = free_port(), free_port()
    app, metrics = f"http://{LOOPBACK}:{app_port}", f"http://{LOOPBACK}:{metrics_port}/metrics"
    args = instrumented(
        str(BIN / "uvicorn"), "--workers", "2", "--host", LOOPBACK, "--port", str(app_port)
    )
    log = tmp_path / "uvicorn.log"
    with running([*args, "asgi:app"], env=env_for(metrics_port), cwd=APPS, log=log) as proc:
        wait_http(f"{app}/health", proc=proc, log=log)
        call(app, 30, 10)
        assert_exact(wait_total(metrics, 40), 30, 10)
        kill_one_and_check(metrics, app, 40)
    text = log.read_text()
    assert "Address already in use" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("kind", ["fork", "spawn", "forkserver", "executor"])
def test_process_pool_calls_add_up_after_the_pool_ends(tmp_path: Path, kind: str) -> None:
    """Pool workers' calls stay on the page after `with Pool` SIGTERMs them (or they exit)."""
    metrics_port = free_port()
    metrics = f"http://{LOOPBACK}:{metrics_port}/metrics"
    done, log = tmp_path / "done", tmp_path / "pool.log"
    args = instrumented(str(BIN / "python"), "pool.py", kind, "40", str(done))
    env = env_for(metrics_port, PYTHONFAULTHANDLER="1")
    with running(args, env=env, cwd=APPS, log=log) as proc:
        deadline = time.monotonic() + 60
        while not done.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not done.exists():  # every process of the app prints its threads' stacks
            os.killpg(proc.pid, signal.SIGABRT)
            time.sleep(2)
        assert done.exists(), log.read_text()
        assert str(proc.pid) not in done.read_text().split()  # the calls ran in workers
        assert_exact(wait_total(metrics, 40, timeout=15), 30, 10)
        assert list(Path(tempfile.gettempdir()).glob(f"agentstat-mp-{proc.pid}-*"))
    # Stopped by SIGTERM, the server installs no handler of its own (the host app dies as
    # it would without agentstat); the next server on the host sweeps the directory.
    multiprocess._sweep()
    assert not list(Path(tempfile.gettempdir()).glob(f"agentstat-mp-{proc.pid}-*"))
    text = log.read_text()
    assert "Address already in use" not in text and "Traceback" not in text, text


def test_celery_prefork_workers_add_up_on_one_page(tmp_path: Path) -> None:
    """celery worker --pool prefork -c 2, recycled every 5 tasks: every task counted, and
    kept when a child is SIGKILLed."""
    metrics_port = free_port()
    metrics = f"http://{LOOPBACK}:{metrics_port}/metrics"
    broker = tmp_path / "broker"
    broker.mkdir()
    env = env_for(metrics_port, MP_BROKER_DIR=str(broker))
    args = instrumented(
        str(BIN / "celery"), "-A", "tasks", "worker", "--pool", "prefork", "-c", "2",
        "--max-tasks-per-child", "5", "--without-heartbeat", "--without-gossip",
        "--without-mingle", "-l", "warning",
    )  # fmt: skip
    log = tmp_path / "celery.log"
    with running(args, env=env, cwd=APPS, log=log) as proc:
        wait_http(metrics, timeout=60, proc=proc, log=log)
        sender = clean_env(PYTHONPATH=str(APPS), MP_BROKER_DIR=str(broker))
        code = "import tasks\nfor i in range(24): tasks.plan.delay(0.06 if i % 4 == 0 else 0.0)"
        subprocess.run([str(BIN / "python"), "-c", code], env=sender, cwd=APPS, check=True)
        assert_exact(wait_total(metrics, 24, timeout=60), 18, 6)
        os.kill(children_of(proc.pid)[0], signal.SIGKILL)  # its tasks were flushed: they stay
        time.sleep(0.5)
        # (Not sending more: a prefork child killed while waiting for work can hold the
        # pool's queue lock, which stalls Celery itself, agentstat or not.)
        assert page_totals(http_get(metrics))["count"] == 24
