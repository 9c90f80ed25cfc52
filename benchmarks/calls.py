"""Per-call overhead of instrumenting an agent: sync, async and streaming calls.

For each call shape one run times, interleaved: the bare call; a wrapt wrapper that only
forwards (the floor of every wrapt-based row); the naive wrapt wrappers recording
through the OTel SDK (``Histogram.record``) and through prometheus_client
(``labels().observe``); agentstat's ``@agent`` decorator; and agentstat's zero-code
path (``AgentstatInstrumentor().instrument(agents=[...])``, a wrapt proxy). A stream
is one whole iteration of a ``CHUNKS``-item generator, so its per-op cost includes the
chunks. Targets (added cost, median): ``@agent`` sync ≤ 400 ns, async ≤ 800 ns; a
module function by dotted path ≤ 500 ns sync (≤ 800 ns async) and ≥ 12× below the naive
OTel wrapper; a stream ≤ 2 µs per stream (its fixed cost, derived from 10- and
100-chunk runs, with the cost per chunk beside it).

Then the shapes a plain call hands back (a coroutine, a future completed later, an
async context manager, a generator), an object with ``async def __call__``, a name read
from the instance (``=@name``) and a dotted path while a framework integration is
patched, each by dotted path beside its own bare call and beside the plain async path
(``async: agentstat instrument(agents=...)``): the added cost of each new shape.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from time import perf_counter
from typing import Any

import wrapt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import agentstat
from agentstat._metrics.store import STORE
from agentstat.instrumentation import _wrappers
from agentstat.semconv import AGENT_DURATION
from benchmarks import _naive, _shapes, _timed
from benchmarks._harness import Case, Mode, Report, Row, Runner, measure, stmt_runner

SECTION = "calls"
INSTRUMENTED_NAME = "bench-wrapt"
#: shape -> (row label -> added-cost limit in ns); streams are held to a per-stream
#: limit instead (see :func:`_per_chunk`).
ADDED_LIMITS: dict[str, dict[str, float]] = {
    "sync": {"agentstat @agent": 400.0, "agentstat instrument(agents=...) (by path)": 500.0},
    "async": {"agentstat @agent": 800.0, "agentstat instrument(agents=...) (by path)": 800.0},
}
#: the zero-code sync call's added cost must be this many times below the naive wrapper's
PATH_OTEL_FACTOR = 12.0
STREAM_LIMIT_NS = 2_000.0

BARE = "bare call"
PASS = "wrapt pass-through, records nothing"
OTEL = "naive wrapt + OTel Histogram.record"
PROM = "naive wrapt + prometheus labels().observe"
DECORATOR = "agentstat @agent"
WRAPT_PATH = "agentstat instrument(agents=...) (by path)"
LONG_STREAM = 100

#: The row each row's ratio divides by: wrappers by the bare call, agentstat by the
#: naive OTel wrapper it replaces.
BASELINE_OF: dict[str, str | None] = {
    BARE: None,
    PASS: BARE,
    OTEL: BARE,
    PROM: BARE,
    DECORATOR: OTEL,
    WRAPT_PATH: OTEL,
}


def _pass_through(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The least a wrapt wrapper does: the floor under every wrapt-based row."""
    return wrapped(*args, **kwargs)


def _sync_runner(fn: Callable[..., Any]) -> Runner:
    return stmt_runner("f(1)", {"f": fn})


def _stream_runner(fn: Callable[..., Any], chunks: int = _timed.CHUNKS) -> Runner:
    return stmt_runner(f"for _ in f({chunks}): pass", {"f": fn})


def _async_runner(fn: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Runner:
    async def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            await fn(1)
        return perf_counter() - start

    return lambda n: loop.run_until_complete(drive(n))


def _astream_runner(
    fn: Callable[..., Any], loop: asyncio.AbstractEventLoop, chunks: int = _timed.CHUNKS
) -> Runner:
    async def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            async for _item in fn(chunks):
                pass
        return perf_counter() - start

    return lambda n: loop.run_until_complete(drive(n))


SHAPES: tuple[tuple[str, str], ...] = (
    ("sync", "sync"),
    ("async", "async"),
    ("generator", "stream"),
    ("async generator", "astream"),
)


def run(mode: Mode, report: Report) -> None:
    """Time every wrapper for every call shape; evaluate the call-overhead targets."""
    otel, _provider = _naive.otel_record()
    prom = _naive.prometheus_record()
    instrumentor = agentstat.AgentstatInstrumentor()
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor.instrument(
        meter_provider=provider,
        agents=[f"{_timed.__name__}:patched_{suffix}={INSTRUMENTED_NAME}" for _, suffix in SHAPES],
    )
    loop = asyncio.new_event_loop()
    runners: dict[str, Callable[[Callable[..., Any]], Runner]] = {
        "sync": _sync_runner,
        "stream": _stream_runner,
        "async": functools.partial(_async_runner, loop=loop),
        "astream": functools.partial(_astream_runner, loop=loop),
    }
    STORE.reset()
    try:
        for shape, suffix in SHAPES:
            bare = getattr(_timed, f"bare_{suffix}")
            patched = getattr(_timed, f"patched_{suffix}")
            wrap = _naive.DECORATORS[shape]
            functions = {
                BARE: bare,
                PASS: wrapt.FunctionWrapper(bare, _pass_through),
                OTEL: wrap(otel)(bare),
                PROM: wrap(prom)(bare),
                DECORATOR: agentstat.agent("bench")(bare),
                WRAPT_PATH: patched,
            }
            if not hasattr(patched, "__wrapped__"):
                raise RuntimeError(f"instrument() did not wrap {_timed.__name__}.{patched}")
            make = runners[suffix]
            cases = [
                Case(
                    f"{shape}: {label}",
                    make(fn),
                    BASELINE_OF[label] and f"{shape}: {BASELINE_OF[label]}",
                )
                for label, fn in functions.items()
            ]
            measure(SECTION, cases, mode, report)
            _targets_for(shape, report)
            if suffix in ("stream", "astream"):
                make_long = functools.partial(make, chunks=LONG_STREAM)
                _per_chunk(mode, report, shape, make_long, bare, functions)
            if suffix == "sync":
                _multiprocess(mode, report, bare)
        _returned_shapes(mode, report, loop, provider)
    finally:
        instrumentor.uninstrument()
        loop.close()
        STORE.reset()


def _awaiting(fn: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Runner:
    """``await fn(1)`` then one loop turn (a future's done-callback runs on the next)."""

    async def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            await fn(1)
            await asyncio.sleep(0)
        return perf_counter() - start

    return lambda n: loop.run_until_complete(drive(n))


def _entering(fn: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Runner:
    async def drive(n: int) -> float:
        start = perf_counter()
        for _ in range(n):
            async with fn(1):
                pass
        return perf_counter() - start

    return lambda n: loop.run_until_complete(drive(n))


#: label -> (bare, path-wrapped, how to drive one call); ``=@name`` reads the instance.
NEW_SHAPES: dict[str, tuple[str, str, str]] = {
    "returns a coroutine": ("bare_returns_coroutine", "patched_returns_coroutine", "await"),
    "returns a future (done-callback)": ("bare_returns_future", "patched_returns_future", "turn"),
    "async context manager": ("bare_run_stream", "patched_run_stream", "enter"),
    "async __call__ object": ("bare_invoker", "patched_invoker", "await"),
    "returns a generator": ("bare_returns_generator", "patched_returns_generator", "iterate"),
}


def _returned_shapes(
    mode: Mode, report: Report, loop: asyncio.AbstractEventLoop, provider: MeterProvider
) -> None:
    """Each new shape by dotted path beside its bare call, and its added cost beside the
    plain async path's."""
    instrumentor = agentstat.AgentstatInstrumentor()
    instrumentor.uninstrument()
    module = _shapes.__name__
    agents = [f"{module}:{patched}={INSTRUMENTED_NAME}" for _, patched, _ in NEW_SHAPES.values()]
    agents.append(f"{module}:Agent.patched_run=@name")
    agents.append(f"{_timed.__name__}:patched_async={INSTRUMENTED_NAME}")
    instrumentor.instrument(meter_provider=provider, agents=agents)
    drive = {
        "await": lambda fn: _async_runner(fn, loop),
        "turn": lambda fn: _awaiting(fn, loop),
        "enter": lambda fn: _entering(fn, loop),
        "iterate": _stream_runner,
    }
    plain = (_async_runner(_timed.bare_async, loop), _async_runner(_timed.patched_async, loop))
    shapes = {
        label: (getattr(_shapes, bare), getattr(_shapes, patched), how)
        for label, (bare, patched, how) in NEW_SHAPES.items()
    }
    agent = _shapes.AGENT
    shapes["name from the instance (=@name)"] = (agent.bare_run, agent.patched_run, "await")
    for label, (bare, patched, how) in shapes.items():
        _one_shape(mode, report, label, drive[how](bare), drive[how](patched), plain)
    # A dotted path while a framework integration is patched: the bookkeeping that lets
    # integrations and explicit entries record a run once.
    _wrappers.track(+1)
    try:
        _one_shape(mode, report, "async, an integration patched", *plain, plain)
    finally:
        _wrappers.track(-1)


def _one_shape(
    mode: Mode,
    report: Report,
    label: str,
    bare: Runner,
    patched: Runner,
    plain: tuple[Runner, Runner],
) -> None:
    """One shape and the plain async path, interleaved in the same rounds, so the
    difference of their added costs is not the machine's drift between sections."""
    base = f"{label}: {BARE}"
    plain_base = f"{label}: plain async, {BARE}"
    rows = measure(
        SECTION,
        [
            Case(base, bare),
            Case(f"{label}: {WRAPT_PATH}", patched, base),
            Case(plain_base, plain[0]),
            Case(f"{label}: plain async, {WRAPT_PATH}", plain[1], plain_base),
        ],
        mode,
        report,
    )
    added = rows[1].value - rows[0].value
    plain_added = rows[3].value - rows[2].value
    report.add(
        Row(
            SECTION,
            f"{label}: added cost",
            added,
            "ns/op",
            note=f"plain async path adds {plain_added:,.0f} ns in the same rounds "
            f"({added - plain_added:+,.0f} ns)",
        )
    )


def _multiprocess(mode: Mode, report: Report, bare: Callable[..., Any]) -> None:
    """``@agent`` in a member process of a multi-process server: recording stays in
    memory; a daemon thread writes the snapshot file once a second meanwhile."""
    import tempfile

    from agentstat._metrics import member, multiprocess

    decorated = agentstat.agent("bench-mp")(bare)
    with tempfile.TemporaryDirectory(prefix="agentstat-bench-") as path:
        multiprocess.join(path)
        try:
            measure(
                SECTION,
                [
                    Case(f"sync: {BARE} (multi-process)", _sync_runner(bare)),
                    Case(
                        f"sync: {DECORATOR}, multi-process mode (member)",
                        _sync_runner(decorated),
                        f"sync: {BARE} (multi-process)",
                    ),
                ],
                mode,
                report,
            )
            family = STORE.histogram(AGENT_DURATION)
            for i in range(1000):
                family.series(("invoke_agent", f"bench-mp-{i}", "")).observe(0.1)
            writer = member.current()
            assert writer is not None
            rounds = 20
            start = perf_counter()
            for i in range(rounds):
                family.series(("invoke_agent", "bench-mp-0", "")).observe(0.1 * i)
                writer.flush()
            seconds = (perf_counter() - start) / rounds
            report.add(
                Row(
                    SECTION,
                    "multi-process snapshot write, 1000 series (background, once a second)",
                    seconds * 1e9,
                    "ns/op",
                    note="build + marshal + atomic replace, measured in this thread",
                )
            )
        finally:
            multiprocess.leave()


def _per_chunk(
    mode: Mode,
    report: Report,
    shape: str,
    make_long: Callable[[Callable[..., Any]], Runner],
    bare: Callable[..., Any],
    functions: dict[str, Callable[..., Any]],
) -> None:
    """Split each agentstat stream's added cost into per-stream and per-chunk parts
    (100 vs 10 chunks); the per-stream part is held to the stream target."""
    long = LONG_STREAM
    base = f"{shape} x{long}: {BARE}"
    for label in (DECORATOR, WRAPT_PATH):
        rows = measure(
            SECTION,
            [
                Case(base, make_long(bare)),
                Case(f"{shape} x{long}: {label}", make_long(functions[label]), base),
            ],
            mode,
            report,
        )
        added_long = rows[1].value - rows[0].value
        added_short = (
            report.find(SECTION, f"{shape}: {label}").value
            - report.find(SECTION, f"{shape}: {BARE}").value
        )
        per_chunk = (added_long - added_short) / (long - _timed.CHUNKS)
        per_stream = added_short - per_chunk * _timed.CHUNKS
        report.add(
            Row(
                SECTION,
                f"{shape}: {label}, added per chunk",
                per_chunk,
                "ns/op",
                note=f"derived: (added at {long} chunks − added at {_timed.CHUNKS}) / "
                f"{long - _timed.CHUNKS}",
            )
        )
        report.add(
            Row(
                SECTION,
                f"{shape}: {label}, added per stream (0 chunks)",
                per_stream,
                "ns/op",
                note=f"derived: added at {_timed.CHUNKS} chunks − {_timed.CHUNKS} × per chunk",
            )
        )
        report.target(
            SECTION,
            f"{shape} {label}: added per stream",
            f"{per_stream:,.0f} ns",
            f"≤ {STREAM_LIMIT_NS:,.0f} ns",
            per_stream <= STREAM_LIMIT_NS,
            f"+ {per_chunk:,.0f} ns per chunk; {added_short:,.0f} ns added at "
            f"{_timed.CHUNKS} chunks",
        )


def _targets_for(shape: str, report: Report) -> None:
    limits = ADDED_LIMITS.get(shape)
    if limits is None:  # streams: see _per_chunk
        return
    bare = report.find(SECTION, f"{shape}: {BARE}").value
    otel = report.find(SECTION, f"{shape}: {OTEL}").value
    otel_added = otel - bare
    for label, limit in limits.items():
        value = report.find(SECTION, f"{shape}: {label}").value
        added = value - bare
        report.target(
            SECTION,
            f"{shape} {label}: added cost",
            f"{added:,.0f} ns",
            f"≤ {limit:,.0f} ns",
            added <= limit,
            f"median {value:,.0f} − bare {bare:,.0f} ns",
        )
        if shape == "sync" and label == WRAPT_PATH:
            factor = otel_added / added if added > 0 else float("inf")
            report.target(
                SECTION,
                f"{shape} {label}: below naive OTel",
                f"{factor:.1f}× less added cost",
                f"≥ {PATH_OTEL_FACTOR:g}×",
                factor >= PATH_OTEL_FACTOR,
                f"added {added:,.0f} ns vs OTel wrapper's {otel_added:,.0f} ns "
                f"(totals {value / otel:.2f}×)",
            )
