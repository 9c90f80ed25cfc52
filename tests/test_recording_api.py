"""The public recording API: ``agentstat.record`` and ``agentstat.timed``."""

from __future__ import annotations

import asyncio
import math

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import agentstat
from agentstat import semconv
from agentstat.testing import calls, sample

TOOL = semconv.TOOL_DURATION


class Boom(Exception):
    pass


def test_record_adds_one_call_with_its_duration() -> None:
    """record() adds exactly one call and its seconds to the named series."""
    agentstat.record("agent", "planner", 0.75)
    agentstat.record("agent", "planner", 0.25)
    assert calls("agent", "planner") == 2
    attributes = {semconv.GEN_AI_AGENT_NAME: "planner"}
    assert sample(semconv.AGENT_DURATION, attributes, field="sum") == pytest.approx(1.0)


def test_record_error_is_the_exception_class_or_the_fixed_string() -> None:
    """An exception is recorded by class, cancellation as `cancelled`, a string as is."""
    agentstat.record("tool", "search", 0.1, error=Boom("secret prompt text"))
    agentstat.record("tool", "search", 0.1, error=asyncio.CancelledError())
    agentstat.record("tool", "search", 0.1, error="rate_limited")
    assert calls("tool", "search", "Boom") == 1
    assert calls("tool", "search", "cancelled") == 1
    assert calls("tool", "search", "rate_limited") == 1
    assert calls("tool", "search") == 0


def test_tool_records_carry_agent_name_and_type_only_when_given() -> None:
    """agent_name/tool_type become gen_ai.agent.name/gen_ai.tool.type; absent otherwise."""
    agentstat.record("tool", "search", 0.1, agent_name="planner", tool_type="function")
    agentstat.record("tool", "search", 0.1)
    both = {
        semconv.GEN_AI_TOOL_NAME: "search",
        semconv.GEN_AI_AGENT_NAME: "planner",
        semconv.GEN_AI_TOOL_TYPE: "function",
    }
    assert sample(TOOL, both) == 1
    assert sample(TOOL, {semconv.GEN_AI_TOOL_NAME: "search"}) == 1


def test_workflow_records_its_own_metric() -> None:
    """kind="workflow" records gen_ai.workflow.duration under gen_ai.workflow.name."""
    agentstat.record("workflow", "newsroom", 2.0)
    assert calls("workflow", "newsroom") == 1
    assert calls("agent", "newsroom") == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "crew", "name": "x", "seconds": 1}, "kind must be one of"),
        ({"kind": "agent", "name": "", "seconds": 1}, "non-empty string"),
        ({"kind": "agent", "name": "x", "seconds": -0.1}, "not negative"),
        ({"kind": "agent", "name": "x", "seconds": math.nan}, "finite"),
        ({"kind": "agent", "name": "x", "seconds": "1"}, "a number"),
        ({"kind": "agent", "name": "x", "seconds": 1, "error": ""}, "error must be"),
        ({"kind": "agent", "name": "x", "seconds": 1, "error": 42}, "error must be"),
        ({"kind": "agent", "name": "x", "seconds": 1, "agent_name": "y"}, "describe tools"),
        ({"kind": "tool", "name": "x", "seconds": 1, "tool_type": ""}, "tool_type must be"),
    ],
)
def test_record_misuse_raises_value_error(kwargs: dict, message: str) -> None:
    """Misuse is refused at once with a precise ValueError, and nothing is recorded."""
    with pytest.raises(ValueError, match=message):
        agentstat.record(**kwargs)
    assert calls("agent", "x") == 0


def test_nothing_is_recorded_under_suppress_instrumentation() -> None:
    """record() and timed() record nothing inside suppress_instrumentation()."""
    with suppress_instrumentation():
        agentstat.record("agent", "quiet", 1.0)
        with agentstat.timed("agent", "quiet"):
            pass
    assert calls("agent", "quiet") == 0


def test_names_past_the_cap_become_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """record() shares the per-metric name cap with every other way of recording."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    agentstat.testing.reset()
    for name in ("a", "b", "c", "d"):
        agentstat.record("agent", name, 0.1)
    assert calls("agent", "a") == calls("agent", "b") == 1
    assert calls("agent", semconv.OTHER) == 2


def test_timed_block_records_its_exception_class_and_reraises_it() -> None:
    """A `with timed(...)` block records one call; its exception leaves unchanged."""
    error = Boom("x")
    with agentstat.timed("agent", "planner"):
        pass
    with pytest.raises(Boom) as raised, agentstat.timed("agent", "planner"):
        raise error
    assert raised.value is error
    assert calls("agent", "planner") == 1
    assert calls("agent", "planner", "Boom") == 1


def test_timed_async_block_records_cancellation() -> None:
    """`async with timed(...)` records a cancelled block as `cancelled`."""

    async def main() -> None:
        async with agentstat.timed("tool", "fetch", agent_name="planner"):
            await asyncio.sleep(0)

        async def slow() -> None:
            async with agentstat.timed("tool", "fetch"):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    with_agent = {semconv.GEN_AI_TOOL_NAME: "fetch", semconv.GEN_AI_AGENT_NAME: "planner"}
    assert sample(TOOL, with_agent) == 1
    cancelled = {semconv.GEN_AI_TOOL_NAME: "fetch", semconv.ERROR_TYPE: "cancelled"}
    assert sample(TOOL, cancelled) == 1


def test_nested_blocks_on_one_timed_object_each_record() -> None:
    """One timed object may be nested: each block is one call with its own duration."""
    timer = agentstat.timed("agent", "nested")
    with timer, timer:
        pass
    assert calls("agent", "nested") == 2


def test_timed_as_a_decorator_times_every_call_shape() -> None:
    """@timed(...) on a function, a coroutine function and a generator function."""

    @agentstat.timed("tool", "plain")
    def plain() -> int:
        return 1

    @agentstat.timed("tool", "coro")
    async def coro() -> int:
        return 2

    @agentstat.timed("tool", "gen")
    def gen():
        yield from range(3)

    assert plain() == 1
    assert asyncio.run(coro()) == 2
    assert list(gen()) == [0, 1, 2]
    assert calls("tool", "plain") == calls("tool", "coro") == calls("tool", "gen") == 1


def test_public_names_are_exported_lazily() -> None:
    """agentstat.record and agentstat.timed are in __all__ and resolve on first use."""
    assert {"record", "timed"} <= set(agentstat.__all__)
    from agentstat.instrumentation.recording import record, timed

    assert agentstat.record is record
    assert agentstat.timed is timed
