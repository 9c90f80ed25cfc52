"""``agentstat check`` against real HTTP /metrics pages: a prometheus_client registry
served in-test while a thread keeps producing traffic, and the demo fleet itself."""

from __future__ import annotations

import itertools
import math
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agentstat import semconv
from agentstat.ops.check import CheckError, Row, Status, evaluate, parse
from agentstat.ops.cli import EXIT_UNREADABLE, check_command
from agentstat.ops.objectives import Objectives
from agentstat.ops.promql import histogram_quantile as quantile
from tests.helpers import BIN, LOOPBACK, clean_env, free_port, running, wait_http

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION
LOOKUPS = semconv.CACHE_LOOKUPS


def _labels(spec: semconv.MetricSpec) -> list[str]:
    return [spec.label(a) for a in spec.attributes]


@dataclass
class Traffic:
    """What one simulated call looks like, by call number."""

    writer_seconds: Callable[[int], float] = lambda i: 0.1
    reviewer_error: Callable[[int], str] = lambda i: ""
    cache_hit: Callable[[int], bool] = lambda i: i % 10 != 0
    load: float = 3
    healthy: int = 1


class FakeFleet:
    """A prometheus_client registry named exactly like agentstat's exporter output,
    served over HTTP, with a thread recording calls until stopped."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.registry = CollectorRegistry()
        reg = self.registry
        self.agent = Histogram(
            AGENT.prometheus_name,
            "agent",
            _labels(AGENT),
            buckets=semconv.DURATION_BUCKETS,
            registry=reg,
        )
        self.tool = Histogram(
            TOOL.prometheus_name,
            "tool",
            _labels(TOOL),
            buckets=semconv.DURATION_BUCKETS,
            registry=reg,
        )
        self.lookups = Counter(
            LOOKUPS.prometheus_name.removesuffix("_total"),
            "lookups",
            _labels(LOOKUPS),
            registry=reg,
        )
        load, capacity, healthy = (
            semconv.INSTANCE_LOAD,
            semconv.INSTANCE_CAPACITY,
            semconv.INSTANCE_HEALTHY,
        )
        self.load = Gauge(load.prometheus_name, "load", _labels(load), registry=reg)
        self.capacity = Gauge(capacity.prometheus_name, "cap", _labels(capacity), registry=reg)
        self.healthy = Gauge(healthy.prometheus_name, "healthy", _labels(healthy), registry=reg)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t = self.traffic
        for i in itertools.count():
            if self._stop.is_set():
                return
            self.agent.labels("invoke_agent", "writer", "").observe(t.writer_seconds(i))
            self.agent.labels("invoke_agent", "reviewer", t.reviewer_error(i)).observe(0.05)
            self.agent.labels("invoke_agent", "planner", "cancelled").observe(30.0)
            self.agent.labels("invoke_agent", "planner", "").observe(0.02)
            self.tool.labels("execute_tool", "calculator", "", "", "").observe(0.004)
            result = semconv.CACHE_RESULT_HIT if t.cache_hit(i) else semconv.CACHE_RESULT_MISS
            self.lookups.labels("llm-responses", "", result).inc()
            for instance in ("researcher-1", "researcher-2"):
                self.load.labels("researcher", instance).set(t.load)
                self.capacity.labels("researcher", instance).set(10)
                self.healthy.labels("researcher", instance).set(t.healthy)
            time.sleep(0.001)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/metrics"

    def __enter__(self) -> FakeFleet:
        self.port = free_port()
        self.server, self.server_thread = start_http_server(
            self.port, addr=LOOPBACK, registry=self.registry
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fleet(request: pytest.FixtureRequest) -> Iterator[FakeFleet]:
    with FakeFleet(getattr(request, "param", Traffic())) as running_fleet:
        yield running_fleet


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(check_command, list(args))
    return result.exit_code, result.output


def test_healthy_page_exits_zero(fleet: FakeFleet) -> None:
    """All targets met: exit 0, a table with every entity, cancelled calls ignored."""
    code, output = _check(fleet.url, "--interval", "0.6")
    assert code == 0, output
    for name in ("writer", "reviewer", "planner", "calculator", "llm-responses"):
        assert name in output
    assert "researcher/researcher-1" in output
    assert "all targets met" in output


@pytest.mark.parametrize(
    ("fleet", "reason"),
    [
        (Traffic(writer_seconds=lambda i: 2.0 if i % 5 == 0 else 0.1), "of calls > 1.0 s"),
        (Traffic(reviewer_error=lambda i: "TimeoutError" if i % 4 == 0 else ""), "success"),
        (Traffic(cache_hit=lambda i: i % 10 == 0), "hit rate"),
        (Traffic(load=9), "load 90%"),
        (Traffic(healthy=0), "no healthy instance"),
    ],
    indirect=["fleet"],
    ids=["slow-agent", "failing-agent", "cold-cache", "hot-instance", "unhealthy-pool"],
)
def test_alert_breach_exits_one(fleet: FakeFleet, reason: str) -> None:
    """Each kind of alert-level breach fails the check and says why."""
    code, output = _check(fleet.url, "--interval", "0.6", "--fail-on", "alert")
    assert code == 1, output
    assert "ALERT" in output and reason in output


@pytest.mark.parametrize(
    "fleet", [Traffic(writer_seconds=lambda i: 0.7 if i % 10 == 0 else 0.1)], indirect=True
)
def test_missed_target_fails_only_with_fail_on_target(fleet: FakeFleet) -> None:
    """10 % of calls above 0.5 s misses the P95 target but not the 1 s alert threshold."""
    code, output = _check(fleet.url, "--interval", "0.6")
    assert code == 1 and "MISSED TARGET" in output, output
    code, output = _check(fleet.url, "--interval", "0.6", "--fail-on", "alert")
    assert code == 0, output


def test_pages_of_several_workers_are_summed() -> None:
    """One worker failing 25 % of reviewer calls and one healthy give 12.5 %: an alert
    (a per-page average would not say so, a per-page check would miss the fleet view)."""
    failing = Traffic(reviewer_error=lambda i: "TimeoutError" if i % 4 == 0 else "")
    with FakeFleet(failing) as first, FakeFleet(Traffic()) as second:
        code, output = _check(first.url, second.url, "--interval", "0.6", "--fail-on", "alert")
    assert code == 1, output
    assert "2 page(s)" in output
    reviewer = next(line for line in output.splitlines() if line.startswith("reviewer"))
    success = float(reviewer.split("%")[0].split()[-1])
    assert 80 < success < 95, reviewer


def test_unreadable_page_exits_two() -> None:
    """A URL nobody serves is an error of its own, not a pass or a breach."""
    code, output = _check(f"http://{LOOPBACK}:{free_port()}/metrics", "--interval", "0.1")
    assert code == EXIT_UNREADABLE
    assert "cannot read" in output


def _page(histogram_lines: list[str]) -> str:
    return "\n".join(["# TYPE gen_ai_invoke_agent_duration_seconds histogram", *histogram_lines])


def test_rates_come_from_the_difference_between_readings() -> None:
    """Lifetime history does not count: a slow past with a fast present passes."""
    name = AGENT.prometheus_name

    def page(fast: int, slow: int) -> str:
        total = fast + slow
        lines = []
        for bound in AGENT.buckets or ():
            count = fast if bound < 1.0 else (fast if bound < 5 else total)
            lines.append(f'{name}_bucket{{gen_ai_agent_name="a",le="{bound}"}} {count}')
        lines.append(f'{name}_bucket{{gen_ai_agent_name="a",le="+Inf"}} {total}')
        lines.append(f'{name}_count{{gen_ai_agent_name="a"}} {total}')
        lines.append(f'{name}_sum{{gen_ai_agent_name="a"}} 0')
        return _page(lines)

    before = parse(page(0, 1000), "w1")
    after = parse(page(500, 1000), "w1")
    (row,) = evaluate(before, after, 1.0, Objectives())
    assert row.status is Status.OK, row
    (row,) = evaluate({}, after, 1.0, Objectives())
    assert row.status is Status.ALERT, row


def test_an_agent_without_calls_in_the_interval_is_idle() -> None:
    """A series that did not move between readings is idle, not a crash or a breach."""
    name = AGENT.prometheus_name
    page = _page(
        [
            f'{name}_bucket{{gen_ai_agent_name="a",le="+Inf"}} 5',
            f'{name}_count{{gen_ai_agent_name="a"}} 5',
        ]
    )
    (row,) = evaluate(parse(page, "w1"), parse(page, "w1"), 1.0, Objectives())
    assert row.status is Status.IDLE
    assert row.values["success"] == "-"


def test_quantile_interpolates_like_prometheus() -> None:
    """Same arithmetic as histogram_quantile: linear inside the bucket."""
    bounds = [0.5, 1.0, 2.5]
    assert quantile(bounds, [50, 100, 100, 100], 0.5) == 0.5
    assert quantile(bounds, [0, 100, 100, 100], 0.5) == 0.75
    assert quantile(bounds, [0, 0, 0, 10], 0.5) == 2.5
    assert math.isnan(quantile(bounds, [0, 0, 0, 0], 0.5))


AGENTSTAT = str(BIN / "agentstat")


@pytest.mark.parametrize(
    ("faults", "expected"), [((), 0), (("failing-agent",), 1)], ids=["healthy", "failing-agent"]
)
def test_against_the_demo(tmp_path: Path, faults: tuple[str, ...], expected: int) -> None:
    """The real command against the real demo: healthy passes the alert thresholds, a
    failing agent does not."""
    port = free_port()
    args = [
        AGENTSTAT,
        "demo",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--no-summary",
        "--seed",
        "7",
    ]
    for fault in faults:
        args += ["--fault", fault]
    log = tmp_path / "demo.log"
    url = f"http://{LOOPBACK}:{port}/metrics"
    with running(args, env=clean_env(), log=log) as proc:
        wait_http(url, timeout=30, proc=proc, log=log)
        time.sleep(1)
        result = subprocess.run(
            # 6 s: ~80 code_exec calls, so the healthy 0.2 % failure rate cannot reach the
            # 5 % alert by chance (at 3 s, two unlucky failures in ~40 calls did, once)
            [AGENTSTAT, "check", url, "--interval", "6", "--fail-on", "alert"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    assert result.returncode == expected, result.stdout + result.stderr
    if expected:
        assert "reviewer" in result.stdout and "ALERT" in result.stdout


def test_rejections_are_below_target_not_an_alert() -> None:
    """Rejections are a warning in the rules, so check rates them below target, not alert."""
    rejections = semconv.BALANCER_REJECTIONS
    pool_label = rejections.label(semconv.POOL_NAME)
    healthy = semconv.INSTANCE_HEALTHY
    labels = f'{healthy.label(semconv.POOL_NAME)}="p",{healthy.label(semconv.INSTANCE_ID)}="p-1"'

    def page(rejected: int) -> str:
        return (
            f"# TYPE {healthy.prometheus_name} gauge\n"
            f"{healthy.prometheus_name}{{{labels}}} 1.0\n"
            f"# TYPE {rejections.prometheus_name.removesuffix('_total')} counter\n"
            f'{rejections.prometheus_name}{{{pool_label}="p"}} {rejected}.0\n'
        )

    rows = evaluate(parse(page(0), "a"), parse(page(3), "a"), 5.0, Objectives())
    (pool,) = [row for row in rows if row.kind == "pool"]
    assert pool.status is Status.BELOW_TARGET
    assert "3 acquisitions rejected" in pool.reasons


def _agent_page(fast: int, total: int, failed: int = 0, le_text: str = "1.0") -> str:
    """One agent's histogram after ``total`` calls, ``fast`` of them <= 1 s (and
    <= 0.5 s), ``failed`` of them failed; the 1 s bound spelled ``le_text``."""
    name = AGENT.prometheus_name
    lines = []
    for error, calls, quick in (
        ("", total - failed, fast - failed),
        ("ValueError", failed, failed),
    ):
        if not calls:
            continue
        error_label = f',error_type="{error}"' if error else ""
        labels = f'gen_ai_agent_name="a"{error_label}'
        for bound, count in (("0.5", quick), (le_text, quick), ("+Inf", calls)):
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {count}')
        lines.append(f"{name}_count{{{labels}}} {calls}")
    return _page(lines)


@pytest.mark.parametrize("le_text", ["1.0", "1"], ids=["scraped", "collector"])
def test_exactly_95_percent_fast_passes_and_94_9_alerts(le_text: str) -> None:
    """ "P95 > 1 s" means more than 5 % slower: 38 of 40 fast passes, 949 of 1000 alerts,
    whichever way the bound is spelled."""
    (row,) = evaluate({}, parse(_agent_page(38, 40, le_text=le_text), "w1"), 1.0, Objectives())
    assert row.status is Status.OK, row
    (row,) = evaluate({}, parse(_agent_page(949, 1000, le_text=le_text), "w1"), 1.0, Objectives())
    assert row.status is Status.ALERT, row


def test_exactly_95_percent_success_passes_the_alert_threshold() -> None:
    """38 of 40 calls succeeding is 95.0 %: below the 99 % target, not below the alert."""
    (row,) = evaluate({}, parse(_agent_page(40, 40, failed=2), "w1"), 1.0, Objectives())
    assert row.status is Status.BELOW_TARGET, row
    (row,) = evaluate({}, parse(_agent_page(1000, 1000, failed=51), "w1"), 1.0, Objectives())
    assert row.status is Status.ALERT, row


def test_a_page_without_the_threshold_bucket_gives_no_verdict() -> None:
    """Bounds without 1 s cannot count "slower than 1 s": no verdict (exit 2), not a
    false alarm that every call is slow."""
    page = _agent_page(40, 40).replace('le="1.0"', 'le="2.0"')
    with pytest.raises(CheckError, match=r"no bucket at 1\.0 s"):
        evaluate({}, parse(page, "w1"), 1.0, Objectives())


def test_one_worker_without_a_healthy_instance_alerts_on_a_merged_page() -> None:
    """On a page merging a server's workers (gauges carry ``process_pid``), one worker
    that sees no healthy instance is an alert, though another worker sees one."""
    healthy = semconv.INSTANCE_HEALTHY
    pid = semconv.prometheus_label(semconv.PROCESS_PID)
    labels = f'{healthy.label(semconv.POOL_NAME)}="p",{healthy.label(semconv.INSTANCE_ID)}="p-1"'
    page = (
        f"# TYPE {healthy.prometheus_name} gauge\n"
        f'{healthy.prometheus_name}{{{labels},{pid}="101"}} 1.0\n'
        f'{healthy.prometheus_name}{{{labels},{pid}="102"}} 0.0\n'
    )
    rows = evaluate(parse(page, "a"), parse(page, "a"), 5.0, Objectives())
    (pool,) = [row for row in rows if row.kind == "pool"]
    assert pool.status is Status.ALERT
    assert "a process sees no healthy instance" in pool.reasons


def _pool_page(loads: list[int], selections: list[int], healthy: list[int] | None = None) -> str:
    load, capacity = semconv.INSTANCE_LOAD, semconv.INSTANCE_CAPACITY
    up, chosen = semconv.INSTANCE_HEALTHY, semconv.BALANCER_SELECTIONS
    lines = []
    for spec, kind in ((load, "gauge"), (capacity, "gauge"), (up, "gauge")):
        lines.append(f"# TYPE {spec.prometheus_name} {kind}")
    lines.append(f"# TYPE {chosen.prometheus_name.removesuffix('_total')} counter")
    for index, (in_flight, count) in enumerate(zip(loads, selections, strict=True)):
        labels = f'agentstat_balancer_pool="p",agentstat_balancer_instance_id="p-{index}"'
        ok = 1 if healthy is None else healthy[index]
        lines += [
            f"{load.prometheus_name}{{{labels}}} {in_flight}",
            f"{capacity.prometheus_name}{{{labels}}} 10",
            f"{up.prometheus_name}{{{labels}}} {ok}",
            f"{chosen.prometheus_name}{{{labels}}} {count}",
        ]
    return "\n".join(lines) + "\n"


def _pool_row(before: str, after: str, seconds: float = 10.0) -> Row:
    rows = evaluate(parse(before, "w"), parse(after, "w"), seconds, Objectives())
    return next(row for row in rows if row.kind == "pool")


def test_uneven_load_is_below_target() -> None:
    """A busy instance at 2.5x its pool's load per capacity misses the even-distribution
    target (a ticket in the rules), with enough traffic and the instance busy enough."""
    row = _pool_row(_pool_page([5, 1, 1, 1], [0] * 4), _pool_page([5, 1, 1, 1], [50, 10, 10, 10]))
    assert row.status is Status.BELOW_TARGET, row
    assert row.values["busiest"] == "2.50x"


@pytest.mark.parametrize(
    ("loads", "selections", "healthy"),
    [
        ([3, 3, 3, 3], [20, 20, 20, 20], None),
        ([5, 1, 1, 1], [2, 1, 1, 1], None),
        ([2, 0, 0, 0], [40, 20, 20, 20], None),
        ([3, 3, 3, 0], [30, 30, 30, 0], [1, 1, 1, 0]),
    ],
    ids=["even", "trickle", "quiet", "ejected-instance-left-out"],
)
def test_even_trickle_quiet_and_ejected_pools_pass(
    loads: list[int], selections: list[int], healthy: list[int] | None
) -> None:
    """Even load, under 1 selection/s, a busiest instance under 25 % busy, or an ejected
    instance standing idle: no uneven-distribution verdict."""
    row = _pool_row(_pool_page(loads, [0] * 4, healthy), _pool_page(loads, selections, healthy))
    assert row.status is Status.OK, row
