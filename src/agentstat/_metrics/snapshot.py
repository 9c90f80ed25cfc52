"""Plain values of everything one process (or many, merged) has recorded.

A :class:`Snapshot` is what crosses every boundary of the metrics side: the store and the
counts registry produce one (:func:`agentstat._metrics.store.local_snapshot`), the
multi-process store writes it to a file and reads it back, :func:`merge` adds several
together, and the producer turns one into OpenTelemetry metrics. It holds only builtin
values (str, int, float, tuples, lists, dicts), so it pickles, marshals and compares.

Keys are ``(metric name, attribute values)``, the values in the order of the metric's
``MetricSpec.attributes`` (``""`` for an absent attribute). A gauge key also carries the
process id that reported it (``""`` when the snapshot describes this process only), so
a page merged from many processes keeps one gauge series per process.
"""

from __future__ import annotations

import logging
import marshal
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentstat._metrics.gil import checkpoint

_logger = logging.getLogger("agentstat")

#: Version of the files below; a file of another version is not read.
FILE_FORMAT = 1

Key = tuple[str, tuple[str, ...]]
GaugeKey = tuple[str, tuple[str, ...], str]


@dataclass
class HistogramData:
    """Bucket counts (one more than the bounds), sum, min and max of one series."""

    bucket_counts: list[int]
    sum: float
    min: float
    max: float

    @property
    def count(self) -> int:
        return sum(self.bucket_counts)

    def add(self, other: HistogramData) -> None:
        pairs = zip(self.bucket_counts, other.bucket_counts, strict=True)
        self.bucket_counts = [a + b for a, b in pairs]
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def minus(self, before: HistogramData | None) -> HistogramData:
        """The increase since ``before`` (min and max stay lifetime values)."""
        if before is None:
            return self
        return HistogramData(
            [a - b for a, b in zip(self.bucket_counts, before.bucket_counts, strict=True)],
            self.sum - before.sum,
            self.min,
            self.max,
        )


@dataclass
class Snapshot:
    """Histograms, counters and gauges at one moment; see the module docstring."""

    #: histogram metric name -> its bucket bounds
    bounds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    histograms: dict[Key, HistogramData] = field(default_factory=dict)
    counters: dict[Key, float] = field(default_factory=dict)
    gauges: dict[GaugeKey, float] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.histograms or self.counters or self.gauges)

    def to_builtin(self) -> tuple:
        """Only builtin containers, for ``marshal`` (see :meth:`from_builtin`)."""
        return (
            {name: list(bounds) for name, bounds in self.bounds.items()},
            {k: [h.bucket_counts, h.sum, h.min, h.max] for k, h in self.histograms.items()},
            self.counters,
            self.gauges,
        )

    @classmethod
    def from_builtin(cls, data: tuple) -> Snapshot:
        bounds, histograms, counters, gauges = data
        built = {}
        for n, (k, v) in enumerate(histograms.items()):
            built[k] = HistogramData(list(v[0]), v[1], v[2], v[3])
            if n % 128 == 127:
                checkpoint()  # a scrape hands the GIL over (agentstat._metrics.gil)
        return cls(
            {name: tuple(b) for name, b in bounds.items()}, built, dict(counters), dict(gauges)
        )


def merge(
    parts: Iterable[tuple[str, Snapshot, bool]], bounds: dict[str, tuple[float, ...]]
) -> Snapshot:
    """Add ``(process, snapshot, alive)`` parts into one snapshot.

    Counters and histograms are summed over every part; gauges come only from live
    parts, each keyed by its process. A histogram whose bounds differ from ``bounds``
    (the serving process's) cannot be added: it is left out, with one warning per
    process and metric.
    """
    total = Snapshot(bounds=dict(bounds))
    for process, part, alive in parts:
        refused: set[str] = set()
        for name, theirs in part.bounds.items():
            ours = total.bounds.setdefault(name, theirs)
            if tuple(ours) != tuple(theirs):
                refused.add(name)
                _warn_bounds(process, name, theirs, ours)
        for n, (key, data) in enumerate(part.histograms.items()):
            if n % 128 == 127:
                checkpoint()  # a scrape hands the GIL over (agentstat._metrics.gil)
            if key[0] in refused:
                continue
            mine = total.histograms.get(key)
            if mine is None:
                total.histograms[key] = HistogramData(
                    list(data.bucket_counts), data.sum, data.min, data.max
                )
            else:
                mine.add(data)
        for key, value in part.counters.items():
            total.counters[key] = total.counters.get(key, 0) + value
        if alive:
            for (name, values, _), value in part.gauges.items():
                total.gauges[(name, values, process)] = value
    return total


_warned: set[tuple[str, str]] = set()


def _warn_bounds(process: str, name: str, theirs: Iterable[float], ours: Iterable[float]) -> None:
    if (process, name) in _warned:
        return
    _warned.add((process, name))
    _logger.warning(
        "agentstat: process %s records %s with bucket bounds %s, this endpoint with %s; "
        "its %s histograms are left out (give every process the same bounds)",
        process,
        name,
        list(theirs),
        list(ours),
        name,
    )


# ------------------------------------------------------------------------------- files


def write_file(path: str, payload: tuple[Any, ...]) -> None:
    """Write ``(FILE_FORMAT, *payload)`` atomically: a reader sees the old file or the
    new one, never a part. Builtin values only (``marshal``)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(marshal.dumps((FILE_FORMAT, *payload)))
    os.replace(tmp, path)


def read_file(path: str) -> tuple[Any, ...] | None:
    """The payload :func:`write_file` wrote, or None (missing, partial, foreign)."""
    try:
        with open(path, "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, tuple) or not data or data[0] != FILE_FORMAT:
        return None
    return data[1:]
