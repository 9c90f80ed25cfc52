"""Every call shape under the real ``opentelemetry-instrument``: a callee that sleeps
0.15 s, exact counts, the bucket each run lands in, errors and cancellation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentstat import semconv
from tests.helpers import Samples, clean_env, free_port, run_instrumented_app

APPS = Path(__file__).parent / "apps"
AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION
SLEEP = 0.15
SLACK = 0.35  # a loaded 2-core machine: scheduling delay per call, never less time

AGENTS = ",".join(
    [
        "callees:returns_coroutine",
        "callees:returns_task",
        "callees:returns_future",
        "callees:returns_pending_future",
        "callees:run_stream",
        "callees:returns_generator",
        "callees:returns_async_generator",
        "callees:Agent.run=@name",
    ]
)
TOOLS = "callees:lookup=@name"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    app_dir = tmp_path_factory.mktemp("call_shapes")
    shutil.copytree(APPS / "call_shapes", app_dir, dirs_exist_ok=True)
    port = free_port()
    env = clean_env(
        AGENTSTAT_AGENTS=AGENTS, AGENTSTAT_TOOLS=TOOLS, OTEL_EXPORTER_PROMETHEUS_PORT=str(port)
    )
    found, _ = run_instrumented_app(app_dir, env, port)
    return found


def _key(spec: semconv.MetricSpec, series: str, name: str, error: str = "", **labels: str):
    operation = semconv.OPERATION_EXECUTE_TOOL if spec is TOOL else semconv.OPERATION_INVOKE_AGENT
    attribute = semconv.GEN_AI_TOOL_NAME if spec is TOOL else semconv.GEN_AI_AGENT_NAME
    found = {spec.label(semconv.GEN_AI_OPERATION_NAME): operation, spec.label(attribute): name}
    if error:
        found[spec.label(semconv.ERROR_TYPE)] = error
    found.update(labels)
    return (series, frozenset(found.items()))


def _count(samples: Samples, name: str, error: str = "", spec=AGENT) -> float:
    return samples.get(_key(spec, spec.count, name, error), 0)


def _assert_timed(samples: Samples, name: str, calls: int, spec=AGENT) -> None:
    """``calls`` successful runs of ``name``, each timed to its real end (≥ 0.15 s)."""
    assert _count(samples, name, spec=spec) == calls
    total = samples[_key(spec, spec.sum, name)]
    assert calls * SLEEP <= total < calls * (SLEEP + SLACK)
    assert samples[_key(spec, spec.bucket, name, le="0.1")] == 0


@pytest.mark.parametrize(
    ("name", "ok", "failed", "cancelled"),
    [
        ("returns_coroutine", 2, 1, 0),
        ("returns_task", 2, 1, 1),
        ("returns_future", 2, 1, 0),
        ("run_stream", 2, 1, 1),
    ],
)
def test_work_handed_back_is_timed_to_its_end_with_its_outcome(
    samples: Samples, name: str, ok: int, failed: int, cancelled: int
) -> None:
    """A coroutine, a task, a future and an async context manager returned by a plain
    function are each timed until they complete, with Boom or `cancelled` when so."""
    _assert_timed(samples, name, ok)
    assert _count(samples, name, "Boom") == failed
    assert _count(samples, name, semconv.ERROR_TYPE_CANCELLED) == cancelled


def test_handle_dropped_before_completing_counts_as_cancelled(samples: Samples) -> None:
    """A future garbage-collected before anyone completed it is one `cancelled` run."""
    assert _count(samples, "returns_pending_future") == 0
    assert _count(samples, "returns_pending_future", semconv.ERROR_TYPE_CANCELLED) == 1


def test_async_call_object_is_timed_as_a_coroutine(samples: Samples) -> None:
    """An object with `async def __call__` is awaited, not timed as a 0 s sync call."""
    _assert_timed(samples, "lookup", 3, spec=TOOL)
    assert _count(samples, "lookup", "Boom", spec=TOOL) == 1


@pytest.mark.parametrize("name", ["returns_generator", "returns_async_generator"])
def test_returned_stream_is_timed_to_exhaustion(samples: Samples, name: str) -> None:
    """A stream returned by a plain function covers the whole iteration."""
    _assert_timed(samples, name, 2)


def test_abandoned_returned_stream_counts_as_cancelled(samples: Samples) -> None:
    """A returned generator closed after its first chunk is one `cancelled` run."""
    assert _count(samples, "returns_generator", semconv.ERROR_TYPE_CANCELLED) == 1


def test_names_come_from_each_instance(samples: Samples) -> None:
    """`callees:Agent.run=@name` records each instance under its own name; an instance
    whose name is None falls back to the qualname."""
    _assert_timed(samples, "alice", 2)
    _assert_timed(samples, "bob", 1)
    _assert_timed(samples, "Agent.run", 1)
