"""The fast path: closures for functions, inline series updates, locks where there is
no GIL, one frame per wrapped level."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import threading
from collections.abc import Iterator
from types import FunctionType

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentstat
import agentstat.testing
from agentstat import semconv
from agentstat._metrics import histograms
from agentstat._metrics.store import STORE
from agentstat.instrumentation import AgentstatInstrumentor, _wrappers
from agentstat.instrumentation._recorder import Recorder
from tests.helpers import run_in_threads

AGENT = semconv.AGENT_DURATION


class CountingLock:
    """A real lock that counts how often it was taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def acquire(self) -> bool:
        self._lock.acquire()
        self.taken += 1  # under the lock itself
        return True

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> CountingLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.fixture
def forced_locks() -> Iterator[list[CountingLock]]:
    """Series created inside are locked, as on a free-threaded build; yields the locks."""
    made: list[CountingLock] = []

    def factory() -> CountingLock:
        made.append(CountingLock())
        return made[-1]

    previous = histograms.FREE_THREADED
    histograms.use_locks(True, factory)
    try:
        yield made
    finally:
        histograms.use_locks(previous)


def test_without_a_gil_every_update_takes_the_series_lock_and_counts_stay_exact(
    forced_locks,
) -> None:
    """With locks forced (the free-threaded path), 8 threads calling a sync and an async
    agent record every call exactly, and each success took the series lock once."""

    @agentstat.agent("locked-sync")
    def work(i: int) -> int:
        return i

    @agentstat.agent("locked-async")
    async def awork(i: int) -> int:
        await asyncio.sleep(0)
        return i

    def worker() -> None:
        for i in range(2_000):
            work(i)
        asyncio.run(_many(awork, 200))

    run_in_threads(worker)
    assert agentstat.testing.calls("agent", "locked-sync") == 16_000
    assert agentstat.testing.calls("agent", "locked-async") == 1_600
    sync_series = _series("locked-sync")
    assert sync_series.lock is not None and sync_series.lock.taken >= 16_000
    assert sum(lock.taken for lock in forced_locks) >= 17_600


async def _many(fn, n: int) -> None:
    await asyncio.gather(*(fn(i) for i in range(n)))


def _series(name: str) -> histograms.HistogramSeries:
    values = tuple(
        {semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT}.get(a, "")
        if a != semconv.GEN_AI_AGENT_NAME
        else name
        for a in AGENT.attributes
    )
    found = STORE.histogram(AGENT).lookup(values)
    assert found is not None
    return found


def test_with_the_gil_series_have_no_lock_and_8_threads_count_exactly() -> None:
    """The default (GIL) path updates series without a lock and loses nothing."""

    @agentstat.agent("lock-free")
    def work(i: int) -> int:
        return i

    def worker() -> None:
        for i in range(5_000):
            work(i)

    run_in_threads(worker)
    series = _series("lock-free")
    assert series.lock is None
    snapshot = series.snapshot()
    assert snapshot.count == 40_000 == sum(snapshot.bucket_counts)
    assert 0 < snapshot.min <= snapshot.max and snapshot.sum >= snapshot.max


def test_a_module_function_by_path_becomes_a_plain_function_that_keeps_its_identity(
    app, meter_provider
) -> None:
    """A module function named by path is replaced by a closure (not a proxy) that keeps
    name, docstring, signature and ``__wrapped__``, is recognised as wrapped, records,
    and is restored by uninstrument; a method keeps its wrapt proxy."""
    module = importlib.import_module(app)
    original, original_search = module.plan, module.search
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider,
        agents=[f"{app}:plan", f"{app}:search", f"{app}:Researcher.run"],
    )
    try:
        assert type(module.plan) is FunctionType
        assert module.plan.__wrapped__ is original
        assert module.plan.__name__ == "plan" and module.plan.__doc__ == "Plan a task."
        assert inspect.signature(module.plan) == inspect.signature(original)
        assert inspect.iscoroutinefunction(module.search)
        assert _wrappers.is_wrapped(module.plan) and _wrappers.is_wrapped(module.search)
        assert isinstance(module.Researcher.__dict__["run"], _wrappers.AgentstatFunctionWrapper)
        assert module.plan("x") == "plan:x"
        assert asyncio.run(module.search("q")) == ["q"]
        assert agentstat.testing.calls("agent", "plan") == 1
        assert agentstat.testing.calls("agent", "search") == 1
    finally:
        AgentstatInstrumentor().uninstrument()
    assert module.plan is original and module.search is original_search


def test_decorating_exports_nothing_until_the_first_call_and_reset_starts_from_zero() -> None:
    """The success series a wrapper binds at decoration is not a series on the page
    until a call lands in it; after a reset the same wrapper records from zero."""

    @agentstat.agent("pinned")
    def work() -> None:
        return None

    assert agentstat.testing.calls("agent", "pinned") == 0
    assert not any("pinned" in values for values in agentstat.testing.series(AGENT))
    work()
    assert agentstat.testing.series(AGENT) == {(semconv.OPERATION_INVOKE_AGENT, "pinned", ""): 1.0}
    agentstat.testing.reset()
    assert agentstat.testing.series(AGENT) == {}
    work()
    work()
    assert agentstat.testing.calls("agent", "pinned") == 2


def test_a_tracer_switches_the_fast_closures_to_spans_and_back() -> None:
    """Setting a tracer sends decorated calls through the span runner; unsetting it
    returns them to the fast path; both record."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @agentstat.agent("spanned")
    def work() -> int:
        return 1

    _wrappers.set_tracer(provider.get_tracer("test"))
    try:
        work()
    finally:
        _wrappers.set_tracer(None)
    work()
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_agent spanned"]
    assert agentstat.testing.calls("agent", "spanned") == 2


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


LEVELS = 40


def _sync_depth(wrap) -> int:
    def down(n: int) -> int:
        return _depth() if n == 0 else step(n - 1)

    step = wrap(down)
    return step(LEVELS)


def _async_depth(wrap) -> int:
    async def down(n: int) -> int:
        return _depth() if n == 0 else await step(n - 1)

    step = wrap(down)
    return asyncio.run(step(LEVELS))


def _method_depth(wrapped: bool) -> int:
    class Holder:
        def down(self, n: int) -> int:
            return _depth() if n == 0 else self.down(n - 1)

    if wrapped:
        raw = Holder.__dict__["down"]
        wrapper = _wrappers.wrapt_wrapper(Recorder("agent", "frames-method"), raw)
        Holder.down = _wrappers.AgentstatFunctionWrapper(raw, wrapper)
    return Holder().down(LEVELS)


def test_each_wrapped_level_adds_exactly_one_frame() -> None:
    """At the bottom of a recursion, every wrapped level (decorated sync and async, a
    function and a method by path) added one frame, not two or three."""
    same = lambda fn: fn  # noqa: E731
    path = lambda fn: _wrappers.closure_for(fn, Recorder("agent", "frames-path"), by_path=True)  # noqa: E731
    levels = LEVELS + 1
    assert _sync_depth(agentstat.agent("frames")) - _sync_depth(same) == levels
    assert _async_depth(agentstat.agent("frames-async")) - _async_depth(same) == levels
    assert _sync_depth(path) - _sync_depth(same) == levels
    assert _method_depth(True) - _method_depth(False) == levels
    assert agentstat.testing.calls("agent", "frames") == levels


def test_a_decorated_agent_recursing_deeply_does_not_hit_the_recursion_limit_early() -> None:
    """With one frame per level a decorated recursion gets as deep as about half the
    recursion limit allows an undecorated one (it was about a third)."""

    @agentstat.agent("deep")
    def down(n: int) -> int:
        return 0 if n == 0 else down(n - 1) + 1

    limit = sys.getrecursionlimit()
    assert down(int(limit * 0.45)) == int(limit * 0.45)


def test_the_series_cap_holds_for_wrapped_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each wrapped name reserves its success series when it is wrapped, so ten agents
    under a cap of 3 export 3 names and ``_OTHER``, however they are called."""
    monkeypatch.setenv("AGENTSTAT_MAX_SERIES", "3")
    agentstat.testing.reset()
    agents = [agentstat.agent(f"capped-{i}")(lambda: None) for i in range(10)]
    for run in agents:
        run()
    names = {values[1] for values in agentstat.testing.series(AGENT)}
    assert names == {"capped-0", "capped-1", "capped-2", semconv.OTHER}
    assert agentstat.testing.calls("agent", semconv.OTHER) == 7


def test_a_reset_keeps_only_the_series_live_wrappers_hold() -> None:
    """After a reset the success series of a wrapper that is gone is gone too (a long
    test suite does not pile them up); a live wrapper's stays, zeroed and hidden."""
    family = STORE.histogram(AGENT)

    @agentstat.agent("kept")
    def kept() -> None:
        return None

    def make_and_drop() -> None:
        agentstat.agent("dropped")(lambda: None)()

    make_and_drop()
    kept()
    agentstat.testing.reset()
    names = {values[1] for values, _ in family._series.items()}
    assert "kept" in names and "dropped" not in names
    assert agentstat.testing.series(AGENT) == {}


def test_a_stream_function_is_a_function_to_introspection_and_weak_references() -> None:
    """A decorated (async) generator function stays one for inspect, on a class too,
    binds its arguments at the call, and can be weakly referenced (signal receivers)."""
    import weakref

    @agentstat.agent("streamer")
    def stream(n: int) -> Iterator[int]:
        yield from range(n)

    class Holder:
        @agentstat.tool("astreamer")
        async def chunks(self, n: int):  # type: ignore[no-untyped-def]
            for i in range(n):
                yield i

    assert isinstance(stream, FunctionType) and inspect.isgeneratorfunction(stream)
    assert inspect.isasyncgenfunction(Holder.chunks)
    assert inspect.isasyncgenfunction(Holder().chunks)
    assert list(inspect.signature(Holder().chunks).parameters) == ["n"]
    with pytest.raises(TypeError):
        stream()  # a bad call raises at the call, as the bare function would
    assert weakref.ref(stream)() is stream
    holder = Holder()
    assert weakref.WeakMethod(holder.chunks)() == holder.chunks

    async def consume() -> list[int]:
        return [i async for i in Holder().chunks(3)]

    assert list(stream(2)) == [0, 1] and asyncio.run(consume()) == [0, 1, 2]
    assert agentstat.testing.calls("agent", "streamer") == 1
    assert agentstat.testing.calls("tool", "astreamer") == 1


def test_a_decorated_object_with_async_call_is_still_a_coroutine_function() -> None:
    """What frameworks check to decide to await (``iscoroutinefunction``) holds for a
    decorated object whose ``__call__`` is ``async def``, as for the bare one."""

    class Invoker:
        async def __call__(self, x: int) -> int:
            return x

    decorated = agentstat.tool("invoker")(Invoker())
    assert inspect.iscoroutinefunction(decorated)
    assert asyncio.run(decorated(2)) == 2
    assert agentstat.testing.calls("tool", "invoker") == 1


def test_a_module_function_by_path_keeps_its_module_globals(app, meter_provider) -> None:
    """The closure resolves names in the function's own module, so what reads
    ``__globals__`` for string annotations (FastAPI, pydantic) finds them."""
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(meter_provider=meter_provider, agents=[f"{app}:plan"])
    try:
        assert module.plan.__globals__ is module.__dict__
        assert module.plan("y") == "plan:y"
    finally:
        AgentstatInstrumentor().uninstrument()


def test_a_re_exported_function_named_twice_by_path_is_not_blamed_on_a_decorator(
    app, meter_provider, tmp_path, caplog
) -> None:
    """A second module re-exporting a path-wrapped function and named too adds nothing
    and logs no error (it was never decorated)."""
    other = f"{app}_reexport"
    (tmp_path / f"{other}.py").write_text(f"from {app} import plan\n")
    try:
        with caplog.at_level("DEBUG", logger="agentstat"):
            AgentstatInstrumentor().instrument(
                meter_provider=meter_provider,
                agents=[f"{app}:plan=alpha", f"{other}:plan=beta"],
                strict=True,
            )
            module = importlib.import_module(other)
        assert module.plan("z") == "plan:z"
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
        assert agentstat.testing.calls("agent", "alpha") == 1
    finally:
        AgentstatInstrumentor().uninstrument()
        sys.modules.pop(other, None)


class _Unhashable(type):
    def __eq__(cls, other: object) -> bool:
        return cls is other

    __hash__ = None  # type: ignore[assignment]


def test_a_result_whose_type_cannot_be_hashed_comes_back_and_is_recorded() -> None:
    """A result whose class has a metaclass with ``__eq__`` and no ``__hash__`` is
    returned as it is, never a TypeError from agentstat."""

    class Odd(metaclass=_Unhashable):
        pass

    @agentstat.agent("odd")
    def make() -> Odd:
        return Odd()

    assert isinstance(make(), Odd)
    assert agentstat.testing.calls("agent", "odd") == 1


def _every_kind(a, b=[], /, c=1, *rest, d, e=None, **more):  # noqa: B006 (identity checked)
    return a, b, c, rest, d, e, more


def test_the_closure_takes_the_function_s_own_parameters_and_passes_them_through() -> None:
    """Positional-only, defaults (the same objects), keyword-only, ``*args`` and
    ``**kwargs`` reach the function exactly as they would bare; ``getfullargspec`` and
    ``__defaults__`` describe the function's parameters."""
    decorated = agentstat.agent("every-kind")(_every_kind)
    for args, kwargs in [
        ((1,), {"d": 4}),
        ((1, [2], 3, 9, 9), {"d": 4, "e": 5, "x": 6}),
        ((1,), {"c": 3, "d": 4, "more": 7}),
    ]:
        assert decorated(*args, **kwargs) == _every_kind(*args, **kwargs)
    assert decorated(1, d=0)[1] is _every_kind(1, d=0)[1]  # the very default object
    assert inspect.getfullargspec(decorated) == inspect.getfullargspec(_every_kind)
    assert decorated.__defaults__ is _every_kind.__defaults__
    assert inspect.signature(decorated) == inspect.signature(_every_kind)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'd'"):
        decorated(1)  # raised at the call, as bare: a call that never ran, not recorded
    assert agentstat.testing.calls("agent", "every-kind") == 4


def test_parameter_names_of_any_kind_never_clash_with_agentstat_s_own() -> None:
    """Parameters named like the closure's own values (``type``, ``start``, ``result``),
    or with its reserved prefix (then the generic ``*args, **kwargs`` closure), work."""

    @agentstat.tool("clash")
    def named(type, start, result=3, *, ok=True):
        return type, start, result, ok

    @agentstat.tool("reserved")
    async def reserved(_as_func, _as_rec=2):
        return _as_func, _as_rec

    assert named(1, 2) == (1, 2, 3, True) and named(1, start=2, ok=0) == (1, 2, 3, 0)
    assert asyncio.run(reserved(1)) == (1, 2)
    assert agentstat.testing.calls("tool", "clash") == 2
    assert agentstat.testing.calls("tool", "reserved") == 1


def test_a_failure_traceback_shows_agentstat_s_line_and_the_function_s() -> None:
    """The exception is the function's own object, and its traceback lists the
    closure's source line (registered with linecache) above the function's."""
    import traceback

    class Boom(Exception):
        pass

    error = Boom()

    @agentstat.agent("traced")
    def fail() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fail()
    assert caught.value is error
    text = "".join(traceback.format_exception(caught.value))
    assert "_as_result = _as_func()" in text and "raise error" in text
