"""The store: what the process recorded, and where collections read it from.

Recording never changes: wrappers, decorators and the runtime primitives record into
:data:`STORE` (histograms) and the counts registry (:mod:`agentstat._metrics.counts`),
in memory, in every mode. What is chosen once per process is the *storage*
(:func:`storage`, :func:`use`) that collections read through the :class:`Storage`
protocol:

- :class:`InProcess` (the default): this process's memory.
- :class:`agentstat._metrics.multiprocess.MultiProcess`: the processes of one server
  (a pre-fork server's workers, a process pool) each write a snapshot of their memory to
  a shared directory about once a second; the process serving ``/metrics`` adds them to
  its own.

A forked child starts from zero with new locks (:func:`after_fork_in_child`, run by
``os.register_at_fork``): its parent reports what was recorded before the fork, and a
lock another thread held at the fork would otherwise stay held in the child forever.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from agentstat._metrics import counts
from agentstat._metrics.gil import checkpoint
from agentstat._metrics.histograms import HistogramFamily
from agentstat._metrics.snapshot import HistogramData, Snapshot
from agentstat.semconv import DURATION_BUCKETS, MetricSpec


class Store:
    """Every pre-aggregated histogram of the process, with its start time.

    One store per process (:data:`STORE`) so that decorators applied at import time and
    instrumentation started later meet; tests call :meth:`reset`.
    """

    def __init__(self) -> None:
        self._families: dict[str, HistogramFamily] = {}
        self._lock = threading.Lock()
        self.start_time_unix_nano = time.time_ns()

    def histogram(self, spec: MetricSpec) -> HistogramFamily:
        family = self._families.get(spec.name)
        if family is None:
            if spec.buckets is DURATION_BUCKETS:  # the user may set their own bounds
                from agentstat.instrumentation.config import with_duration_buckets

                spec = with_duration_buckets(spec)
            with self._lock:
                family = self._families.setdefault(spec.name, HistogramFamily(spec))
        return family

    def families(self) -> Iterator[HistogramFamily]:
        return iter(list(self._families.values()))

    def reset(self) -> None:
        """Forget every series (for tests; a live process never needs this).

        Families stay, so wrappers holding one keep recording into the emptied store.
        """
        with self._lock:
            for family in self._families.values():
                family.clear()
            self.start_time_unix_nano = time.time_ns()

    def collect(self, into: Snapshot) -> None:
        """Add every histogram series and its family's bounds to ``into``.

        A series that exists is exported from 0 (a pool's wait histogram is created with
        the pool): "0 waits", not "No data", before the first one. The exception is the
        success series a wrapper binds when it is made: decorating is not calling."""
        for family in self.families():
            name = family.spec.name
            into.bounds[name] = tuple(family.spec.buckets or ())
            for n, (values, series) in enumerate(family.items()):
                snap = series.snapshot()
                into.histograms[(name, values)] = HistogramData(
                    snap.bucket_counts, snap.sum, snap.min, snap.max
                )
                if n % 64 == 63:
                    checkpoint()  # a scrape hands the GIL over (agentstat._metrics.gil)

    def after_fork_in_child(self) -> None:
        """Empty every family and renew every lock (see the module docstring)."""
        self._lock = threading.Lock()
        for family in self._families.values():
            family.after_fork_in_child()
        self.start_time_unix_nano = time.time_ns()


STORE = Store()


def local_snapshot(
    histograms: Store | None = None, registry: counts.CountsRegistry | None = None
) -> Snapshot:
    """Everything this process recorded: histograms, counters and its gauges."""
    snapshot = Snapshot()
    (histograms or STORE).collect(snapshot)
    (registry or counts.COUNTS).collect(snapshot)
    return snapshot


class Storage(Protocol):
    """Where a collection reads recorded values: the one storage seam."""

    def collect(self, *, all_processes: bool) -> Snapshot:
        """This process's values, or (``all_processes``) those of every process that
        shares this one's storage, merged."""
        ...

    @property
    def start_time_unix_nano(self) -> int:
        """When the values began: the start of cumulative points."""
        ...


class InProcess:
    """The values of this process only (by default :data:`STORE` and the counts
    registry; a benchmark or test may pass its own)."""

    def __init__(self, histograms: Store | None = None, registry: Any = None) -> None:
        self.histograms = histograms
        self.registry = registry

    def collect(self, *, all_processes: bool) -> Snapshot:
        return local_snapshot(self.histograms, self.registry)

    @property
    def start_time_unix_nano(self) -> int:
        return (self.histograms or STORE).start_time_unix_nano


_storage: Storage = InProcess()


def storage() -> Storage:
    """The storage chosen for this process."""
    return _storage


def use(chosen: Storage) -> None:
    """Choose the storage collections read (the exporter does, once per process)."""
    global _storage
    _storage = chosen


#: Called in a forked child after the store and the counts are reset (the multi-process
#: storage joins its directory there).
_fork_hooks: list[Callable[[], None]] = []


def on_fork_in_child(hook: Callable[[], None]) -> None:
    _fork_hooks.append(hook)


def after_fork_in_child() -> None:
    """A forked child's first act: zero, unlock, then let the storage follow."""
    STORE.after_fork_in_child()
    counts.after_fork_in_child()
    from agentstat._metrics.caps import CAPS

    CAPS.after_fork_in_child()
    for hook in _fork_hooks:
        hook()


os.register_at_fork(after_in_child=after_fork_in_child)
