"""The integration base in process: ``start_run``/``Run``, ``current_agent_name``,
and ``FrameworkInstrumentor``'s switches, with the small framework of
tests/apps/framework."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from agentstat import semconv
from agentstat.instrumentation import AgentstatInstrumentor, _wrappers
from agentstat.integrations import FrameworkInstrumentor, current_agent_name, start_run
from agentstat.testing import calls, sample

FRAMEWORK = Path(__file__).parent / "apps" / "framework"


class Boom(Exception):
    pass


def test_nested_run_of_the_same_key_is_not_recorded_again() -> None:
    """Delegation (invoke -> stream on one object) records one run; another object's
    run inside it records its own."""
    agent, other = object(), object()
    outer = start_run("agent", "planner", key=agent)
    assert outer is not None
    assert start_run("agent", "planner", key=agent) is None
    inner = start_run("agent", "helper", key=other)
    assert inner is not None
    inner.finish()
    outer.finish()
    assert calls("agent", "planner") == 1
    assert calls("agent", "helper") == 1


def test_without_a_key_the_name_identifies_the_run() -> None:
    """key=None: a nested run of the same kind and name is the same logical run."""
    outer = start_run("workflow", "crew")
    assert start_run("workflow", "crew") is None
    agent = start_run("agent", "crew")  # another kind is another run
    assert agent is not None
    agent.finish()
    outer.finish()
    again = start_run("workflow", "crew")  # finished: a new run may start
    assert again is not None
    again.finish()
    assert calls("workflow", "crew") == 2


def test_start_run_is_none_under_suppress_instrumentation() -> None:
    """Suppressed code records nothing and gets no run."""
    with suppress_instrumentation():
        assert start_run("agent", "quiet") is None


def test_finish_is_idempotent_and_never_raises() -> None:
    """A second finish() adds nothing; a malformed error is recorded as _OTHER."""
    run = start_run("tool", "search")
    run.finish(Boom())
    run.finish()
    assert calls("tool", "search", "Boom") == 1
    assert calls("tool", "search") == 0
    odd = start_run("tool", "odd")
    odd.finish(error=42)  # type: ignore[arg-type]
    assert calls("tool", "odd", semconv.OTHER) == 1


def test_finish_from_another_thread_records_once_and_frees_the_key() -> None:
    """Event hooks end runs on other threads: recorded once, and not left open here."""
    key = object()
    run = start_run("agent", "threaded", key=key)
    worker = threading.Thread(target=run.finish, args=("timeout",))
    worker.start()
    worker.join()
    assert calls("agent", "threaded", "timeout") == 1
    again = start_run("agent", "threaded", key=key)
    assert again is not None
    again.finish()


def test_current_agent_name_is_the_innermost_open_agent() -> None:
    """current_agent_name() names the innermost open agent run, None outside any."""
    assert current_agent_name() is None
    outer = start_run("agent", "planner", key=1)
    inner = start_run("agent", "researcher", key=2)
    tool = start_run("tool", "search", agent_name=current_agent_name())
    assert current_agent_name() == "researcher"
    tool.finish()
    inner.finish()
    assert current_agent_name() == "planner"
    outer.finish()
    assert current_agent_name() is None


def test_detached_run_is_open_only_inside_attached_blocks() -> None:
    """A run started in a generator's body, detached at once, is open only inside
    ``attached()`` (delegation there is still one run) and restores exactly what was
    open before; outside, a run of the same key is recorded. Once done, attaching is a
    no-op."""
    agent = object()
    before = _wrappers.ACTIVE.get()
    run = start_run("agent", "streamer", key=agent)
    assert run is not None
    run.detach()
    assert _wrappers.ACTIVE.get() is before and current_agent_name() is None
    with run.attached():
        assert current_agent_name() == "streamer"
        assert start_run("agent", "streamer", key=agent) is None
    assert _wrappers.ACTIVE.get() is before
    between = start_run("agent", "streamer", key=agent)
    assert between is not None
    between.finish()
    run.finish()
    assert _wrappers.ACTIVE.get() is before
    with run.attached():
        assert _wrappers.ACTIVE.get() is before
    assert calls("agent", "streamer") == 2


def test_start_run_misuse_raises_value_error() -> None:
    """Unknown kinds, empty names and bad start values are refused."""
    with pytest.raises(ValueError, match="kind must be one of"):
        start_run("crew", "x")
    with pytest.raises(ValueError, match="non-empty"):
        start_run("agent", "")
    with pytest.raises(ValueError, match="perf_counter"):
        start_run("agent", "x", start=float("inf"))


# ------------------------------------------------------------------- instrumentors


@pytest.fixture
def fakefw(meter_provider) -> Iterator[tuple[ModuleType, type]]:
    sys.path.insert(0, str(FRAMEWORK))
    try:
        import fakefw
        from agentstat_test_integrations.fakefw import FakeFrameworkInstrumentor

        yield fakefw, FakeFrameworkInstrumentor
    finally:
        for instrumentor in (FakeFrameworkInstrumentor(), AgentstatInstrumentor()):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        sys.path.remove(str(FRAMEWORK))


def test_instrument_twice_patches_once_and_uninstrument_restores(fakefw, meter_provider) -> None:
    """instrument() is idempotent; uninstrument() restores the framework's methods and
    turns off the dotted paths' bookkeeping."""
    module, instrumentor_class = fakefw
    original = module.Agent.__dict__["run"]
    instrumentor = instrumentor_class()
    instrumentor.instrument(meter_provider=meter_provider)
    patched = module.Agent.__dict__["run"]
    instrumentor.instrument(meter_provider=meter_provider)  # logs "already instrumented"
    assert module.Agent.__dict__["run"] is patched is not original
    assert _wrappers.TRACKING[0] == 1
    module.Agent("planner").run("x")
    assert calls("agent", "planner") == 1
    instrumentor.uninstrument()
    assert module.Agent.__dict__["run"] is original
    assert _wrappers.TRACKING[0] == 0
    module.Agent("planner").run("x")
    assert calls("agent", "planner") == 1


def test_each_framework_instrumentor_is_its_own_singleton(fakefw) -> None:
    """Subclasses never share BaseInstrumentor's per-class instance."""
    _, instrumentor_class = fakefw

    class Other(FrameworkInstrumentor):
        framework, distribution, supported = "other_fw", "other-fw", ">= 1"

        def _patch(self, module: ModuleType) -> None: ...

        def _unpatch(self) -> None: ...

    assert Other() is Other()
    assert Other() is not instrumentor_class()
    assert Other().instrumentation_dependencies() == ("other-fw >= 1",)


@pytest.mark.parametrize("entry_first", [True, False])
def test_explicit_entry_and_integration_record_once_in_either_order(
    fakefw, meter_provider, entry_first: bool
) -> None:
    """Whichever wraps outermost, a dotted entry on a method the integration times
    records each run once, under the entry's name."""
    module, instrumentor_class = fakefw
    steps = [
        lambda: AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=["fakefw:Agent.run=explicit"]
        ),
        lambda: instrumentor_class().instrument(meter_provider=meter_provider),
    ]
    for step in steps if entry_first else reversed(steps):
        step()
    planner = module.Agent("planner", tools=[lambda task: task])
    planner.run("a")
    with pytest.raises(ValueError):
        planner.run("fail")
    assert calls("agent", "explicit") == 1
    assert calls("agent", "explicit", "ValueError") == 1
    assert calls("agent", "planner") == 0
    tool = {semconv.GEN_AI_TOOL_NAME: "<lambda>", semconv.GEN_AI_AGENT_NAME: "explicit"}
    tool[semconv.GEN_AI_TOOL_TYPE] = "function"
    assert sample(semconv.TOOL_DURATION, tool) == 1


def test_run_finishes_when_what_the_hook_returns_completes() -> None:
    """finish_when_done() gives integrations the dotted paths' call shapes: a task, an
    async context manager and a stream each end the run when they really end."""

    async def work(fail: bool) -> str:
        await asyncio.sleep(0.01)
        if fail:
            raise Boom()
        return "done"

    @contextlib.asynccontextmanager
    async def streaming():
        yield "chunk"

    async def main() -> None:
        task = start_run("agent", "handler").finish_when_done(asyncio.ensure_future(work(True)))
        with pytest.raises(Boom):
            await task
        async with start_run("agent", "streamer", key=1).finish_when_done(streaming()):
            assert calls("agent", "streamer") == 0
        coroutine = start_run("agent", "deferred", key=2).finish_when_done(work(False))
        assert await coroutine == "done"

    asyncio.run(main())
    stream = start_run("tool", "chunks").finish_when_done(iter_chunks())
    assert calls("tool", "chunks") == 0
    assert list(stream) == [0, 1]
    assert calls("agent", "handler", "Boom") == 1
    assert calls("agent", "streamer") == 1
    assert calls("agent", "deferred") == 1
    assert calls("tool", "chunks") == 1
    assert sample(semconv.TOOL_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_TOOL_NAME: "chunks"}) == 1
    plain = start_run("agent", "plain")
    assert plain.finish_when_done(42) == 42
    assert calls("agent", "plain") == 1


def iter_chunks():
    yield from range(2)
