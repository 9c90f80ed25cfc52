"""Helpers for testing code that agentstat instruments, and agentstat itself.

::

    import agentstat.testing

    def setup_function():
        agentstat.testing.reset()

    def test_planner_records_one_call():
        plan("task")
        assert agentstat.testing.calls("agent", "planner") == 1

    clock = agentstat.testing.FakeClock()
    cache = agentstat.Cache(ttl=10, clock=clock)
    clock.advance(11)                        # the entry has expired

:func:`sample` reads one recorded value by metric and attributes, as prometheus_client's
``get_sample_value`` does, straight from agentstat's own state: no reader, exporter or
scrape involved. Values recorded by other processes are not included.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentstat import semconv
from agentstat._metrics.caps import CAPS
from agentstat._metrics.counts import COUNTS
from agentstat._metrics.store import STORE
from agentstat.semconv import Instrument, MetricSpec

__all__ = ["FakeClock", "calls", "reset", "sample", "series"]


class FakeClock:
    """A monotonic clock the test moves by hand; pass it as ``clock=``, and its
    :meth:`sleep` / :meth:`asleep` as ``sleep=`` to make waiting advance it instantly."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        #: Every wait made through :meth:`sleep` or :meth:`asleep`, in order.
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """Record a wait and move time forward by it, without waiting."""
        self.waits.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        """:meth:`sleep` for async code."""
        self.sleep(seconds)


def reset() -> None:
    """Forget everything recorded and every admitted name, and undo instrumentation.

    Decorated functions, caches and balancers keep working and record afresh.
    """
    from agentstat.instrumentation import AgentstatInstrumentor, _wrappers, recording

    instrumentor = AgentstatInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    recording.forget_recorders()  # first: the series only they held go with the store
    STORE.reset()
    CAPS.reset()
    _wrappers.set_tracer(None)


def _key(spec: MetricSpec, attributes: Mapping[str, str]) -> tuple[str, ...]:
    unknown = set(attributes) - set(spec.attributes)
    if unknown:
        raise ValueError(f"{spec.name} has no attribute(s) {sorted(unknown)}")
    return tuple(attributes.get(name, "") for name in spec.attributes)


def sample(
    spec: MetricSpec, attributes: Mapping[str, str] | None = None, *, field: str = "count"
) -> float | None:
    """The value of one series of ``spec`` with exactly these ``attributes`` (absent ones
    are empty), or None when it was never recorded.

    For a histogram, ``field`` is ``"count"`` or ``"sum"``; counters and gauges have one
    value. A timed operation's ``gen_ai.operation.name`` is filled in when not given.
    """
    attributes = dict(attributes or {})
    if semconv.GEN_AI_OPERATION_NAME in spec.attributes:
        for operation in semconv.OPERATIONS:
            if spec in (operation.duration, operation.time_to_first_chunk):
                attributes.setdefault(semconv.GEN_AI_OPERATION_NAME, operation.operation_name)
    key = _key(spec, attributes)
    if spec.instrument is Instrument.HISTOGRAM:
        if field not in ("count", "sum"):
            raise ValueError(f"field must be 'count' or 'sum', not {field!r}")
        series = STORE.histogram(spec).lookup(key)
        if series is None or not series.exported():
            return None
        snapshot = series.snapshot()
        return float(snapshot.count if field == "count" else snapshot.sum)
    return COUNTS.observe(spec).get(key)


def series(spec: MetricSpec) -> dict[tuple[str, ...], float]:
    """Every recorded series of ``spec``: its attribute values, in the order of
    ``spec.attributes`` ("" where absent) -> its value (a histogram's count)."""
    if spec.instrument is Instrument.HISTOGRAM:
        family = STORE.histogram(spec)
        return {
            tuple(snapshot.attributes.get(name, "") for name in spec.attributes): float(
                snapshot.count
            )
            for snapshot in family.snapshots()
        }
    return dict(COUNTS.observe(spec))


def calls(kind: str, name: str, error_type: str = "") -> int:
    """Recorded calls of the agent or tool ``name`` that ended with ``error_type``
    ("" for success)."""
    operation = semconv.operation(kind)
    value = sample(
        operation.duration,
        {operation.name_attribute: name, semconv.ERROR_TYPE: error_type},
    )
    return int(value or 0)
