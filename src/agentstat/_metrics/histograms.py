"""Pre-aggregated histograms: the reason an instrumented call costs ~0.35 µs, not ~8 µs.

The OpenTelemetry SDK's ``Histogram.record`` costs 6–12 µs per call on our machines
(attribute hashing, view matching, exemplar sampling). agentstat instead keeps one
bucket array per attribute set, bound once (a wrapper keeps its success series) and
updated in place, and hands the finished aggregation to every OTel metric reader at
collection time (see :mod:`agentstat._metrics.bridge`). What leaves the process is an
ordinary OTel explicit-bucket histogram, so the Prometheus and OTLP exporters treat it
like any other.

Thread safety without a lock on GIL builds: an observation is a straight run of
bytecode with no call and no backward jump between its reads and writes
(``counts[i] += 1``, ``sum += v``, the min/max tests), and CPython switches threads
only at those points, so no update is lost or torn; a snapshot reads a series the same
way. A per-series lock cost 1.1–4.8× per call with 8 threads (context switches); this
costs nothing. On a free-threaded build, or an interpreter other than CPython, every
series gets a lock and every observation and snapshot takes it (:data:`FREE_THREADED`,
decided once at import; tests force it with :func:`use_locks`). Under a line tracer
(``sys.settrace``, coverage) a callback can run between a min/max test and its store,
so min and max (exported over OTLP only) may miss a value then; counts and sums are one
line each and stay exact.

The number of series per metric is bounded here; the values of each attribute are
bounded before they get here, by :mod:`agentstat._metrics.caps`.
"""

from __future__ import annotations

import logging
import sys
import sysconfig
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentstat._metrics.caps import CAPS, KEPT_ERROR_TYPES
from agentstat.environment_variables import AGENTSTAT_MAX_SERIES
from agentstat.semconv import ERROR_TYPE, GEN_AI_OPERATION_NAME, OTHER, Instrument, MetricSpec

_logger = logging.getLogger("agentstat")


def _needs_locks() -> bool:
    """Whether the lock-free reasoning above may not hold: not CPython (PyPy and others
    switch threads elsewhere), or a free-threaded build (even while its GIL is on: an
    extension module can turn it on for a while)."""
    if sys.implementation.name != "cpython":
        return True
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


#: True where series must be locked (see :func:`_needs_locks`); series take it when
#: they are created.
FREE_THREADED: bool = _needs_locks()
_new_lock: Callable[[], Any] = threading.Lock


def use_locks(on: bool, lock_factory: Callable[[], Any] = threading.Lock) -> None:
    """Lock the series created from now on (``on``), as on a free-threaded build, with
    locks from ``lock_factory``: for tests that prove the locked path on a GIL build."""
    global FREE_THREADED, _new_lock
    FREE_THREADED, _new_lock = on, lock_factory


class HistogramSeries:
    """Bucket counts, sum, min and max of one attribute set; ``observe`` is thread-safe.

    The fields are public because agentstat's call wrappers update them inline (a
    method call would be a fifth of the per-call cost); they do exactly what
    :meth:`observe` does, and take :meth:`observe` whenever ``lock`` is set. ``counts``
    is the same list object for the series' whole life (wrappers hold it).
    """

    __slots__ = ("_holders", "attributes", "bounds", "counts", "lock", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...], attributes: dict[str, str]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.lock = _new_lock() if FREE_THREADED else None
        self.attributes = attributes
        #: weak references to the wrappers' recorders holding it (see ``bound``)
        self._holders: list[weakref.ref[Any]] | None = None

    def pin(self, holder: object) -> None:
        if self._holders is None:
            self._holders = []
        self._holders = [ref for ref in self._holders if ref() is not None]
        self._holders.append(weakref.ref(holder))

    def held(self) -> bool:
        """Whether a live wrapper holds it."""
        return self._holders is not None and any(ref() is not None for ref in self._holders)

    def exported(self) -> bool:
        """False for a pinned series with no observation yet: decorating is not calling."""
        return self._holders is None or any(self.counts)

    def observe(self, value: float) -> None:
        # Buckets are upper-inclusive, as in OTel and Prometheus: 1.0 counts in le="1.0".
        index = bisect_left(self.bounds, value)
        lock = self.lock
        if lock is not None:
            lock.acquire()
        try:  # without a lock: no call between the reads and writes (module docstring)
            self.counts[index] += 1
            self.sum += value
            if value < self.min:
                self.min = value
            if value > self.max:
                self.max = value
        finally:
            if lock is not None:
                lock.release()

    def _zero(self) -> None:
        self.counts[:] = [0] * len(self.counts)  # in place: wrappers hold the list
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def after_fork_in_child(self) -> None:
        """Start from zero with a new lock (see :mod:`agentstat._metrics.store`)."""
        if self.lock is not None:
            self.lock = _new_lock()
        self._zero()

    def snapshot(self) -> HistogramSnapshot:
        lock = self.lock
        if lock is None:  # one straight run of reads, as an observation is one of writes
            counts, total, low, high = self.counts[:], self.sum, self.min, self.max
        else:
            with lock:
                counts, total, low, high = self.counts[:], self.sum, self.min, self.max
        return HistogramSnapshot(self.attributes, counts, sum(counts), total, low, high)


@dataclass(frozen=True)
class HistogramSnapshot:
    attributes: dict[str, str]
    bucket_counts: list[int]
    count: int
    sum: float
    min: float
    max: float


class HistogramFamily:
    """All series of one histogram metric, keyed by the tuple of attribute values.

    ``series(values)`` returns the same :class:`HistogramSeries` for the same values, so
    callers may keep it (a pre-bound child, as prometheus_client calls it).

    At most ``max_series`` series (default ``AGENTSTAT_MAX_SERIES``, 2000) are created
    freely. Past that a new attribute set folds: a name that already has series keeps
    it, with a new error type recorded as ``_OTHER``; a new name becomes ``_OTHER``.
    ``gen_ai.operation.name``, success (no ``error.type``) and ``cancelled`` are never
    changed, so the few series they add past the limit are bounded by the name caps.
    A series a wrapper binds (:meth:`bound`) counts from the moment it is bound: a
    wrapped function reserves its success series.
    """

    def __init__(self, spec: MetricSpec, max_series: int | None = None) -> None:
        if spec.instrument is not Instrument.HISTOGRAM or spec.buckets is None:
            raise ValueError(f"{spec.name} is not a histogram with explicit buckets")
        self.spec = spec
        #: None: the process-wide limit, :meth:`agentstat._metrics.caps.Caps.limit`.
        self.max_series = max_series
        self._series: dict[tuple[str, ...], HistogramSeries] = {}
        self._lock = threading.Lock()
        attributes = spec.attributes
        self._error_index = attributes.index(ERROR_TYPE) if ERROR_TYPE in attributes else -1
        self._kept_indexes = {
            i for i, a in enumerate(attributes) if a in (ERROR_TYPE, GEN_AI_OPERATION_NAME)
        }
        #: every attribute set but its error type: the names that already have series
        self._prefixes: set[tuple[str, ...]] = set()
        #: pinned series kept across :meth:`clear` (tests): not counted while empty
        self._dormant: set[HistogramSeries] = set()
        #: the limit at which the family was last found full (a full family stays full)
        self._full_at: int | None = None
        self._warned = False
        #: ``lookup(values)``: the series if it exists, else None. A bound ``dict.get``
        #: (one C call) for hot paths; fall back to :meth:`series` on None.
        self.lookup = self._series.get

    def series(self, values: tuple[str, ...]) -> HistogramSeries:
        found = self._series.get(values)
        if found is not None:
            return found
        return self._create(values)

    def bound(self, values: tuple[str, ...], holder: object) -> HistogramSeries:
        """The series for ``values``, for ``holder`` (a wrapper's recorder) to keep and
        update inline: *pinned*, so it is left out of collections until it has an
        observation (decorating is not calling) and, while ``holder`` lives, survives
        :meth:`clear` zeroed (what the wrapper holds is always the series exported)."""
        return self._create(values, holder)

    def _prefix(self, values: tuple[str, ...]) -> tuple[str, ...]:
        index = self._error_index
        return values if index < 0 else values[:index] + values[index + 1 :]

    def _fold(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """Where a new attribute set goes once the family is full (under the lock)."""
        index = self._error_index
        error = values[index] if index >= 0 else ""
        kept = error in KEPT_ERROR_TYPES
        if index >= 0 and self._prefix(values) in self._prefixes:
            if kept:
                return values
            return (*values[:index], OTHER, *values[index + 1 :])
        folded = tuple(
            v if (i in self._kept_indexes or not v) else OTHER for i, v in enumerate(values)
        )
        if index >= 0 and not kept:
            folded = (*folded[:index], OTHER, *folded[index + 1 :])
        return folded

    def _create(self, values: tuple[str, ...], holder: object = None) -> HistogramSeries:
        if len(values) != len(self.spec.attributes):
            raise ValueError(
                f"{self.spec.name} takes {len(self.spec.attributes)} attribute values "
                f"{self.spec.attributes}, got {values!r}"
            )
        limit = self.max_series if self.max_series is not None else CAPS.limit("series")
        with self._lock:
            found = self._series.get(values)
            if found is None and self._is_full(limit):
                if not self._warned:
                    self._warned = True
                    _logger.warning(
                        "agentstat: %s reached %d series (%s); new error types are recorded "
                        "as %s under their name, new names as %s",
                        self.spec.name,
                        limit,
                        AGENTSTAT_MAX_SERIES,
                        OTHER,
                        OTHER,
                    )
                values = self._fold(values)
                found = self._series.get(values)
            if found is None:
                attributes = {k: v for k, v in zip(self.spec.attributes, values, strict=True) if v}
                found = HistogramSeries(self.spec.buckets or (), attributes)
                self._series[values] = found
                self._prefixes.add(self._prefix(values))
            if holder is not None:  # under the lock: a clear() cannot slip in between
                found.pin(holder)
                self._dormant.discard(found)
            return found

    def _is_full(self, limit: int) -> bool:
        """Whether the family holds ``limit`` counted series (dormant empty ones aside)."""
        if self._full_at == limit:
            return True
        if len(self._series) < limit:
            return False
        idle = sum(1 for series in self._dormant if not any(series.counts))
        if len(self._series) - idle < limit:
            return False
        self._full_at = limit
        return True

    def clear(self) -> None:
        """Forget every series but those pinned by a live holder (see :meth:`bound`),
        which are zeroed and kept *dormant*: not counted toward the limit until used."""
        with self._lock:
            kept = {k: s for k, s in self._series.items() if s.held()}
            self._series.clear()  # in place: ``lookup`` stays bound to this dict
            self._prefixes.clear()
            for values, series in kept.items():
                series._zero()
                self._series[values] = series
                self._prefixes.add(self._prefix(values))
            self._dormant = set(kept.values())
            self._full_at = None
            self._warned = False

    def after_fork_in_child(self) -> None:
        """Zero every series in place (the parent reports what they held; callers may
        hold a series) and renew every lock."""
        self._lock = threading.Lock()
        for series in self._series.values():
            series.after_fork_in_child()

    def items(self) -> list[tuple[tuple[str, ...], HistogramSeries]]:
        """``(attribute values, series)`` pairs of the exported series, copied (safe
        while others record); a pinned series joins at its first observation."""
        return [(k, s) for k, s in list(self._series.items()) if s.exported()]

    def snapshots(self) -> list[HistogramSnapshot]:
        return [series.snapshot() for _, series in self.items()]

    def __len__(self) -> int:
        return len(self._series)
