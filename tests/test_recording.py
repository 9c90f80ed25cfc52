"""Behaviour of the call wrappers, through the ``@agent``/``@tool`` decorators."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import traceback

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import agentstat
import agentstat.testing
from agentstat import semconv
from agentstat._metrics.store import STORE
from tests.helpers import run_in_threads

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION


class Boom(Exception):
    pass


def test_return_value_is_the_same_object() -> None:
    """The wrapped function's return value passes through untouched."""
    sentinel = object()

    @agentstat.agent("a")
    def run() -> object:
        return sentinel

    assert run() is sentinel
    assert agentstat.testing.calls("agent", "a") == 1


def test_exception_is_the_same_object_with_its_traceback() -> None:
    """The wrapped function's exception is re-raised unchanged, original frames included."""
    raised: list[BaseException] = []

    @agentstat.agent("a")
    def run() -> None:
        exc = Boom("x")
        raised.append(exc)
        raise exc

    with pytest.raises(Boom) as info:
        run()
    assert info.value is raised[0]
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "run"
    assert agentstat.testing.calls("agent", "a", "Boom") == 1
    assert agentstat.testing.calls("agent", "a") == 0


def test_metadata_signature_and_coroutine_flag_are_preserved() -> None:
    """__name__, __doc__, inspect.signature and iscoroutinefunction survive decoration."""

    async def original(query: str, *, limit: int = 3) -> list[str]:
        """Search the web."""
        return [query] * limit

    wrapped = agentstat.tool("web_search")(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Search the web."
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped("q", limit=2)) == ["q", "q"]
    assert agentstat.testing.calls("tool", "web_search") == 1


def test_bare_decorator_names_the_agent_by_qualname() -> None:
    """``@agent`` without arguments uses the function's qualified name."""

    @agentstat.agent
    def planner() -> int:
        return 1

    planner()
    assert agentstat.testing.calls("agent", planner.__qualname__) == 1


def test_bad_decorator_arguments_raise_clear_errors() -> None:
    """A non-string or empty name is refused at decoration time with a clear message."""
    with pytest.raises(ValueError, match="non-empty name"):
        agentstat.agent("")
    with pytest.raises(ValueError, match="non-empty name"):
        agentstat.tool(name=42)  # type: ignore[arg-type]


def test_durations_land_in_the_right_buckets() -> None:
    """A 0.5 s call counts in le=0.5 (upper-inclusive), a 0.6 s call only from le=1.0."""
    family = STORE.histogram(AGENT)
    series = family.series((semconv.OPERATION_INVOKE_AGENT, "a", ""))
    for value in (0.5, 0.6, 1.0, 1.0000001):
        series.observe(value)
    snap = series.snapshot()
    bounds = list(semconv.DURATION_BUCKETS)
    assert snap.bucket_counts[bounds.index(0.5)] == 1
    assert snap.bucket_counts[bounds.index(1.0)] == 2
    assert snap.bucket_counts[bounds.index(2.5)] == 1
    assert snap.count == 4


def test_cancelled_coroutine_is_recorded_as_cancelled_not_failed() -> None:
    """asyncio cancellation is recorded with error.type=cancelled and re-raised."""
    started = asyncio.Event()

    @agentstat.agent("slow")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert agentstat.testing.calls("agent", "slow", semconv.ERROR_TYPE_CANCELLED) == 1
    assert agentstat.testing.calls("agent", "slow") == 0


def test_generator_duration_covers_the_stream_and_first_chunk_is_timed() -> None:
    """A generator is one call from first next() to exhaustion, plus a time to first chunk."""

    @agentstat.agent("streamer")
    def stream(n: int):
        yield from range(n)
        return "done"

    assert inspect.isgeneratorfunction(stream)

    def consume():
        return (yield from stream(3))

    gen = consume()
    assert [next(gen), next(gen), next(gen)] == [0, 1, 2]
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert agentstat.testing.calls("agent", "streamer") == 1
    assert (
        agentstat.testing.sample(
            semconv.AGENT_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_AGENT_NAME: "streamer"}
        )
        == 1
    )


def test_generator_send_and_throw_are_forwarded() -> None:
    """send() reaches the wrapped generator, and throw() is handled by it."""

    @agentstat.agent("echo")
    def echo():
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "handled"

    gen = echo()
    assert next(gen) is None
    assert gen.send("hi") == "hi"
    assert gen.throw(KeyError("k")) == "handled"
    gen.close()
    assert agentstat.testing.calls("agent", "echo", semconv.ERROR_TYPE_CANCELLED) == 1


def test_abandoned_generator_is_recorded_as_cancelled() -> None:
    """A stream closed by its consumer before the end counts as cancelled, not failed."""

    @agentstat.agent("streamer")
    def stream():
        yield from range(10)

    gen = stream()
    next(gen)
    gen.close()
    assert agentstat.testing.calls("agent", "streamer", semconv.ERROR_TYPE_CANCELLED) == 1
    assert agentstat.testing.calls("agent", "streamer") == 0


def test_async_generator_stream_failure_and_abandon() -> None:
    """Async streams: completed, failing mid-stream and abandoned calls are told apart."""

    @agentstat.agent("astream")
    async def astream(fail: bool):
        for i in range(3):
            await asyncio.sleep(0)
            if fail and i == 1:
                raise Boom("mid-stream")
            yield i

    assert inspect.isasyncgenfunction(astream)

    async def main() -> None:
        assert [x async for x in astream(False)] == [0, 1, 2]
        with pytest.raises(Boom):
            async for _ in astream(True):
                pass
        gen = astream(False)
        assert await gen.__anext__() == 0
        await gen.aclose()

    asyncio.run(main())
    assert agentstat.testing.calls("agent", "astream") == 1
    assert agentstat.testing.calls("agent", "astream", "Boom") == 1
    assert agentstat.testing.calls("agent", "astream", semconv.ERROR_TYPE_CANCELLED) == 1
    assert (
        agentstat.testing.sample(
            semconv.AGENT_TIME_TO_FIRST_CHUNK, {semconv.GEN_AI_AGENT_NAME: "astream"}
        )
        == 3
    )


def test_async_generator_asend_and_athrow_are_forwarded() -> None:
    """asend() values and athrow() exceptions reach the wrapped async generator."""

    @agentstat.agent("aecho")
    async def aecho():
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "handled"

    async def main() -> None:
        gen = aecho()
        assert await gen.__anext__() is None
        assert await gen.asend("hi") == "hi"
        assert await gen.athrow(KeyError("k")) == "handled"
        await gen.aclose()

    asyncio.run(main())
    assert agentstat.testing.calls("agent", "aecho", semconv.ERROR_TYPE_CANCELLED) == 1


def test_suppress_instrumentation_skips_recording() -> None:
    """Calls made under suppress_instrumentation() are not recorded but still run."""

    @agentstat.agent("a")
    def run() -> int:
        return 7

    with suppress_instrumentation():
        assert run() == 7
    assert agentstat.testing.calls("agent", "a") == 0
    run()
    assert agentstat.testing.calls("agent", "a") == 1


def test_error_types_are_capped_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past AGENTSTAT_MAX_ERROR_TYPES distinct classes, further ones become _OTHER."""
    monkeypatch.setenv("AGENTSTAT_MAX_ERROR_TYPES", "3")
    classes = [type(f"Error{i}", (Exception,), {}) for i in range(6)]

    @agentstat.agent("a")
    def run(cls: type[Exception]) -> None:
        raise cls()

    for cls in classes:
        with pytest.raises(cls):
            run(cls)
    error_at = AGENT.attributes.index(semconv.ERROR_TYPE)
    types = {k[error_at] for k in agentstat.testing.series(AGENT)} - {""}
    assert types == {"Error0", "Error1", "Error2", semconv.OTHER}
    assert agentstat.testing.calls("agent", "a", semconv.OTHER) == 3


def test_agent_names_are_capped_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past AGENTSTAT_MAX_NAMES distinct agent names, further names become _OTHER."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    for i in range(5):
        agentstat.agent(f"agent-{i}")(lambda: None)()
    name_at = AGENT.attributes.index(semconv.GEN_AI_AGENT_NAME)
    names = {k[name_at] for k in agentstat.testing.series(AGENT)}
    assert names == {"agent-0", "agent-1", semconv.OTHER}
    assert agentstat.testing.calls("agent", semconv.OTHER) == 3


def test_counts_are_exact_under_eight_threads() -> None:
    """8 threads x 10k calls give exactly 80k recorded calls, split exactly by outcome."""

    @agentstat.agent("threaded")
    def run(i: int) -> None:
        if i % 10 == 0:
            raise Boom()

    def worker() -> None:
        for i in range(10_000):
            with contextlib.suppress(Boom):
                run(i)

    run_in_threads(worker)
    assert agentstat.testing.calls("agent", "threaded") == 72_000
    assert agentstat.testing.calls("agent", "threaded", "Boom") == 8_000
    ok = {semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT}
    ok[semconv.GEN_AI_AGENT_NAME] = "threaded"
    snap = STORE.histogram(AGENT).lookup(tuple(ok.get(a, "") for a in AGENT.attributes))
    assert snap is not None and sum(snap.snapshot().bucket_counts) == 72_000


def test_counts_are_exact_under_ten_thousand_concurrent_tasks() -> None:
    """10k concurrent asyncio tasks, some failing and some cancelled, are all counted."""

    @agentstat.tool("concurrent")
    async def run(i: int) -> None:
        await asyncio.sleep(0.01 if i % 7 else 10)
        if i % 5 == 0:
            raise Boom()

    async def main() -> None:
        tasks = [asyncio.create_task(run(i)) for i in range(10_000)]
        await asyncio.sleep(0.5)
        for i, task in enumerate(tasks):
            if i % 7 == 0:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    cancelled = len(range(0, 10_000, 7))
    failed = sum(1 for i in range(10_000) if i % 7 and i % 5 == 0)
    assert agentstat.testing.calls("tool", "concurrent", semconv.ERROR_TYPE_CANCELLED) == cancelled
    assert agentstat.testing.calls("tool", "concurrent", "Boom") == failed
    assert agentstat.testing.calls("tool", "concurrent") == 10_000 - cancelled - failed


def test_streams_bind_their_arguments_at_call_time() -> None:
    """A wrapped (async) generator called with bad arguments raises TypeError at the
    call, as the bare function does, not at the first next()."""

    @agentstat.agent("s")
    def stream(n: int):
        yield n

    @agentstat.agent("a")
    async def astream(n: int):
        yield n

    with pytest.raises(TypeError):
        stream(1, 2)
    with pytest.raises(TypeError):
        astream(1, 2)
    assert agentstat.testing.calls("agent", "s") == 0
