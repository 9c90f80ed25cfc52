"""Fork safety, the multi-process merge, caps and bounds across processes, servers and
resources per process: the store's behaviour with real forks and real endpoints."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

import agentstat
import agentstat.testing
from agentstat import semconv
from agentstat._metrics import bridge, multiprocess
from agentstat._metrics.snapshot import HistogramData, Snapshot, merge, write_file
from agentstat.environment_variables import AGENTSTAT_MULTIPROCESS_DIR
from tests.helpers import clean_env, http_get

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def alone() -> Iterator[None]:
    """Whatever a test joins or serves, the process is back on its own afterwards."""
    yield
    multiprocess.leave()


def agent_counts(page: str) -> dict[str, float]:
    """``{agent name: call count}`` on a /metrics page."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == semconv.AGENT_DURATION.count:
                name = sample.labels["gen_ai_agent_name"]
                found[name] = found.get(name, 0) + sample.value
    return found


def wait_counts(url: str, expected: dict[str, float], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = agent_counts(http_get(url))
        if seen == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"expected {expected}, saw {seen}")


def run_in_fork(target: Any, *args: Any) -> int:
    """Run ``target(*args)`` in a forked multiprocessing child; its exit code."""
    process = FORK.Process(target=target, args=args)
    process.start()
    process.join(30)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError("the forked child hung")
    return process.exitcode


@agentstat.agent("mp_forked")
def forked_agent() -> int:
    return 1


def test_forked_child_with_recording_threads_neither_hangs_nor_counts_twice() -> None:
    """Forks while three threads record: every child records at once and counts only its own."""
    cache: agentstat.Cache[int, int] = agentstat.Cache(name="mp-fork-cache")
    cache.get(1)
    stop = threading.Event()

    def record() -> None:
        while not stop.is_set():
            forked_agent()
            cache.get(1)

    threads = [threading.Thread(target=record) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:  # the child: one call, then its own counts only
                code = 1
                try:
                    forked_agent()
                    cache.get(1)
                    lookups = agentstat.testing.sample(
                        semconv.CACHE_LOOKUPS,
                        {semconv.CACHE_NAME: "mp-fork-cache", semconv.CACHE_RESULT: "miss"},
                    )
                    exact = agentstat.testing.calls("agent", "mp_forked") == 1 and lookups == 1
                    code = 0 if exact else 3
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0, "child counted its parent's"
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    raise AssertionError("a forked child hung on its first recorded call")
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_merge_keeps_exited_processes_counts_and_only_live_processes_gauges() -> None:
    """Counters and histograms add over every part; gauges only from live parts, per pid."""
    name = semconv.AGENT_DURATION.name
    bounds = {name: (0.5, 1.0)}
    key = (name, ("invoke_agent", "a", ""))
    size = (semconv.CACHE_SIZE.name, ("c", ""), "")
    lookups = (semconv.CACHE_LOOKUPS.name, ("c", "", "hit"))

    def part(counts: list[int], hits: float) -> Snapshot:
        data = HistogramData(counts, 0.1 * sum(counts), 0.1, 0.9)
        return Snapshot(bounds, {key: data}, {lookups: hits}, {size: 5.0})

    total = merge([("11", part([1, 2, 0], 3), True), ("12", part([0, 1, 4], 4), False)], bounds)
    assert total.histograms[key].bucket_counts == [1, 3, 4]
    assert total.counters[lookups] == 7
    assert total.gauges == {(semconv.CACHE_SIZE.name, ("c", ""), "11"): 5.0}


def test_other_bucket_bounds_are_left_out_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """A process with other bounds is refused, said once, its counters still added."""
    name = semconv.AGENT_DURATION.name
    key = (name, ("invoke_agent", "a", ""))
    lookups = (semconv.CACHE_LOOKUPS.name, ("c", "", "hit"))
    ours = Snapshot({name: (1.0,)}, {key: HistogramData([1, 0], 0.1, 0.1, 0.1)}, {lookups: 1})
    theirs = Snapshot({name: (2.0,)}, {key: HistogramData([5, 0], 0.5, 0.1, 0.1)}, {lookups: 2})
    with caplog.at_level(logging.WARNING, logger="agentstat"):
        for _ in range(2):
            total = merge([("1", ours, True), ("77", theirs, True)], {name: (1.0,)})
    assert total.histograms[key].bucket_counts == [1, 0]
    assert total.counters[lookups] == 3
    lines = [r.getMessage() for r in caplog.records if "bucket bounds" in r.getMessage()]
    assert len(lines) == 1 and "process 77" in lines[0] and "[2.0]" in lines[0]


@agentstat.agent("mp_member")
def member_agent() -> int:
    return 1


def call_member_agent(times: int) -> None:
    for _ in range(times):
        member_agent()


def test_endpoint_adds_forked_members_and_keeps_exited_ones(alone: None) -> None:
    """all_processes: the page adds children's calls, kept after they exit (compacted)."""
    server = agentstat.start_metrics_server(port=0, all_processes=True, set_global=False)
    try:
        path = os.environ[AGENTSTAT_MULTIPROCESS_DIR]
        member_agent()
        assert run_in_fork(call_member_agent, 5) == 0
        assert run_in_fork(call_member_agent, 7) == 0
        wait_counts(server.url, {"mp_member": 13})
        names = os.listdir(path)
        assert "retired.snap" in names and not [n for n in names if n.startswith("p-")]
        assert agent_counts(http_get(server.url)) == {"mp_member": 13}
    finally:
        server.shutdown()
    multiprocess.leave()
    assert not os.path.exists(path) and AGENTSTAT_MULTIPROCESS_DIR not in os.environ


def test_process_started_some_other_way_joins_by_the_environment_variable(alone: None) -> None:
    """A plain `python` started with AGENTSTAT_MULTIPROCESS_DIR set adds its calls at exit."""
    server = agentstat.start_metrics_server(port=0, all_processes=True, set_global=False)
    try:
        code = "import agentstat\nfor _ in range(3): agentstat.agent('mp_joined')(int)()"
        env = clean_env(**{AGENTSTAT_MULTIPROCESS_DIR: os.environ[AGENTSTAT_MULTIPROCESS_DIR]})
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
        wait_counts(server.url, {"mp_joined": 3})
    finally:
        server.shutdown()


def call_names(names: list[str]) -> None:
    for name in names:
        agentstat.agent(name)(lambda: None)()


def test_caps_admit_a_name_once_for_every_process(
    alone: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap a name is _OTHER in every process, never by name in one and not another."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    agentstat.testing.reset()
    server = agentstat.start_metrics_server(port=0, all_processes=True, set_global=False)
    try:
        assert run_in_fork(call_names, ["cap-a", "cap-b"]) == 0
        assert run_in_fork(call_names, ["cap-c", "cap-a"]) == 0
        call_names(["cap-b", "cap-d"])
        expected = {"cap-a": 2, "cap-b": 2, semconv.OTHER: 2}
        wait_counts(server.url, expected)
    finally:
        server.shutdown()


def test_new_server_in_a_shared_directory_drops_an_earlier_runs_files(
    alone: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory set by hand: what exited processes of an earlier run left never shows."""
    name = semconv.AGENT_DURATION.name
    stale = Snapshot({}, {(name, ("invoke_agent", "mp_stale", "")): HistogramData([3], 1, 1, 1)})
    child = FORK.Process(target=time.sleep, args=(0,))
    child.start()
    child.join()  # a pid that is certainly dead
    write_file(str(tmp_path / f"p-{child.pid}-old.snap"), (child.pid, stale.to_builtin()))
    monkeypatch.setenv(AGENTSTAT_MULTIPROCESS_DIR, str(tmp_path))
    server = agentstat.start_metrics_server(port=0, all_processes=True, set_global=False)
    try:
        member_agent()
        assert agent_counts(http_get(server.url)) == {"mp_member": 1}
        assert not list(tmp_path.glob("p-*"))
    finally:
        server.shutdown()


def test_two_servers_in_one_process_show_each_series_once_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each server has its own registry: no series twice, no MeterProvider override warning."""
    with caplog.at_level(logging.WARNING):
        first = agentstat.start_metrics_server(port=0)
        second = agentstat.start_metrics_server(port=0)
    try:
        member_agent()
        for server in (first, second):
            lines = [
                line
                for line in http_get(server.url).splitlines()
                if line.startswith(semconv.AGENT_DURATION.count) and '"mp_member"' in line
            ]
            assert len(lines) == 1, lines
    finally:
        first.shutdown()
        second.shutdown()
    assert not [r for r in caplog.records if "Overriding" in r.getMessage()]


def report_instance_id(connection: Any, provider: MeterProvider, reader: Any) -> None:
    member_agent()
    data = reader.get_metrics_data()
    connection.send(data.resource_metrics[0].resource.attributes["service.instance.id"])


def test_forked_child_exports_under_its_own_service_instance_id() -> None:
    """The resource is read at each collection: a forked child gets its own instance id."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert bridge.attach(provider) is not None
        member_agent()
        ours = reader.get_metrics_data().resource_metrics[0].resource.attributes
        parent_end, child_end = FORK.Pipe()
        assert run_in_fork(report_instance_id, child_end, provider, reader) == 0
        theirs = parent_end.recv()
        assert ours["service.instance.id"] and theirs and theirs != ours["service.instance.id"]
    finally:
        provider.shutdown()


def test_delta_reader_gets_increments_of_counters_and_histograms() -> None:
    """A delta reader gets what changed since its last collection, counts and calls alike."""
    from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(
        preferred_temporality={Counter: delta, Histogram: delta, ObservableCounter: delta}
    )
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert bridge.attach(provider) is not None
        cache: agentstat.Cache[int, int] = agentstat.Cache(name="mp-delta")
        seen = []
        for calls in (2, 3):
            for _ in range(calls):
                member_agent()
                cache.get(0)
            data = reader.get_metrics_data()
            values = {}
            for metric in data.resource_metrics[0].scope_metrics[-1].metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes)
                    if attributes.get(semconv.GEN_AI_AGENT_NAME) == "mp_member":
                        values["calls"] = point.count
                    miss = {semconv.CACHE_NAME: "mp-delta", semconv.CACHE_RESULT: "miss"}
                    if miss.items() <= attributes.items():
                        values["misses"] = point.value
            seen.append(values)
        assert seen == [{"calls": 2, "misses": 2}, {"calls": 3, "misses": 3}]
    finally:
        provider.shutdown()


def test_unreadable_member_file_is_left_out_and_the_page_still_renders(alone: None) -> None:
    """A file that is not a snapshot (truncated, foreign) is skipped, not fatal."""
    server = agentstat.start_metrics_server(port=0, all_processes=True, set_global=False)
    try:
        path = os.environ[AGENTSTAT_MULTIPROCESS_DIR]
        with open(os.path.join(path, f"p-{os.getppid()}-bad.snap"), "wb") as f:
            f.write(b"\x00not marshal")
        member_agent()
        assert agent_counts(http_get(server.url)) == {"mp_member": 1}
    finally:
        server.shutdown()
