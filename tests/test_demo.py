"""``agentstat demo``: the README's first command, run as a user would run it."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agentstat import semconv
from agentstat.demo import fleet as demo
from agentstat.ops import objectives
from tests.helpers import BIN, clean_env, free_port, running, wait_http

AGENTSTAT = str(BIN / "agentstat")


def _families(page: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(page)}


def _label_values(samples: list, label: str) -> set[str]:
    return {s.labels.get(label) for s in samples}


def test_demo_serves_every_agent_tool_cache_and_instance_then_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """The demo serves the whole fleet's metrics on 127.0.0.1 and exits 0 on SIGINT."""
    port = free_port()
    log = tmp_path / "demo.log"
    args = [AGENTSTAT, "demo", "--port", str(port), "--interval", "1", "--seed", "7"]
    with running(args, env=clean_env(), log=log) as proc:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(url, proc=proc, log=log)
        time.sleep(2.5)
        families = _families(wait_http(url, proc=proc, log=log))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    output = log.read_text()

    agents = families[semconv.AGENT_DURATION.prometheus_name]
    agent_label = semconv.AGENT_DURATION.label(semconv.GEN_AI_AGENT_NAME)
    assert _label_values(agents, agent_label) >= set(demo.AGENTS)
    tools = families[semconv.TOOL_DURATION.prometheus_name]
    assert _label_values(tools, semconv.TOOL_DURATION.label(semconv.GEN_AI_TOOL_NAME)) >= set(
        demo.TOOLS
    )
    lookups = families[semconv.CACHE_LOOKUPS.prometheus_name.removesuffix("_total")]
    names = _label_values(lookups, semconv.CACHE_LOOKUPS.label(semconv.CACHE_NAME))
    assert names >= {demo.CACHE, demo.TIERED_CACHE}
    tiers = _label_values(lookups, semconv.CACHE_LOOKUPS.label(semconv.CACHE_TIER))
    assert tiers >= {*demo.TIERS, semconv.TIER_ALL}
    capacity = families[semconv.INSTANCE_CAPACITY.prometheus_name]
    assert {s.value for s in capacity} == {demo.INSTANCE_CAPACITY}
    ids = _label_values(capacity, semconv.INSTANCE_CAPACITY.label(semconv.INSTANCE_ID))
    assert ids == set(demo.INSTANCES)
    assert "p95" in output and "caches:" in output
    assert "agentstat demo: stopped" in output


def test_demo_stops_by_itself_after_duration() -> None:
    """--duration N ends the run with exit code 0 after about N seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [AGENTSTAT, "demo", "--port", "0", "--duration", "1.5", "--no-summary"],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert 1.5 <= time.monotonic() - started < 30
    assert "stopped after" in result.stdout


def test_unknown_fault_is_a_usage_error() -> None:
    """A fault name the demo does not know is refused with the list of valid ones."""
    result = subprocess.run(
        [AGENTSTAT, "demo", "--fault", "meteor-strike"],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "meteor-strike" in result.stderr and "slow-agent" in result.stderr


def test_port_in_use_is_a_clear_error_not_a_traceback() -> None:
    """If the port is taken the demo says so in one line and exits 1."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [AGENTSTAT, "demo", "--port", str(port), "--duration", "1"],
            env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_slow_agent_fault_breaks_only_the_writers_latency_target() -> None:
    """With --fault slow-agent the writer's P95 is above 1 s and the planner's is not."""
    fleet = demo.Fleet(["slow-agent"], seed=1)
    import random

    rng = random.Random(3)
    writer = sorted(fleet.profiles[demo.SLOW_AGENT].latency(rng) for _ in range(2000))
    planner = sorted(fleet.profiles["planner"].latency(rng) for _ in range(2000))
    assert writer[int(0.95 * len(writer))] > objectives.LATENCY_P95_ALERT_SECONDS
    assert planner[int(0.95 * len(planner))] < objectives.LATENCY_P95_TARGET_SECONDS
