"""agentstat's own families on ``/metrics``, rendered straight from a Snapshot.

Why not through the OpenTelemetry Prometheus reader: it turns every series into SDK data
points, then into prometheus_client samples (a dict of labels per bucket line), then
formats each line: ~180 ms for 1000 histogram series, under the GIL in stretches
longer than the switch interval (an app thread stalls 5–25 ms per scrape), leaving
~39 000 GC-tracked objects that bring gen-2 collections on. Here a Snapshot becomes
text directly (~15 ms, ~3 000 objects, the snapshot's own):

- label strings are built once per series and kept (:class:`Renderer`; bounded by the
  series caps, dropped when the store restarts), so a scrape formats only numbers;
- one ``str.format`` per histogram series, with cumulative counts from
  :func:`itertools.accumulate` and no per-sample objects;
- every :data:`_CHUNK` series it calls :func:`agentstat._metrics.gil.checkpoint`, so
  inside the page's sliced scrape an app thread waiting for the GIL gets it within a
  millisecond, not after the 5 ms switch interval.

The bytes are the stock reader's for the same Snapshot: names, units and descriptions
from :mod:`agentstat.semconv` resolved as the reader does, header lines produced by
prometheus_client's own encoder for an empty family, labels sorted with ``le`` among
them, values as ``floatToGoString``. Only the escapings that leave legacy names as they
are (``underscores``, ``allow-utf-8``) are rendered here; :func:`stock_families` (the
reader's own translation) serves the others and the ``name[]`` filter, exactly and
slowly. ``tests/test_exposition.py`` compares both pages line for line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate, zip_longest
from typing import Any

from opentelemetry.exporter.prometheus._mapping import (
    map_unit,
    sanitize_attribute,
    sanitize_full_name,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

from agentstat import semconv
from agentstat._metrics.gil import checkpoint
from agentstat._metrics.snapshot import Snapshot
from agentstat.semconv import Instrument, MetricSpec

#: Series per encoded chunk and between two checkpoints (a chunk of ~64 KiB: large
#: joins of fresh memory cost page faults, a whole page ~1 ms each for join and encode).
_CHUNK = 16
#: Cached label strings (~0.5 KB a histogram series) past which the cache starts over:
#: the series caps keep it far below this; it only guards against churning label values.
MAX_CACHED_SERIES = 50_000
_INT_FAST = 1_000_000  # below this, floatToGoString(n) of an int n is f"{n}.0"

_SPECS = {spec.name: spec for spec in semconv.ALL_METRICS}
_FACTORIES = {
    Instrument.HISTOGRAM: HistogramMetricFamily,
    Instrument.COUNTER: CounterMetricFamily,
}


@dataclass(frozen=True)
class Dialect:
    """One exposition format: text 0.0.4/1.0.0 or OpenMetrics, and a name escaping."""

    openmetrics: bool
    escaping: str = openmetrics.UNDERSCORES

    @property
    def direct(self) -> bool:
        """Whether :class:`Renderer` renders it (legacy names pass unchanged)."""
        return self.escaping in (openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8)


def dialect_of(encoder: Callable[..., bytes]) -> Dialect:
    """The dialect of an encoder ``prometheus_client.exposition.choose_encoder`` chose."""
    func = getattr(encoder, "func", encoder)
    escaping = getattr(encoder, "keywords", {}).get("escaping", openmetrics.UNDERSCORES)
    return Dialect(func is openmetrics.generate_latest, escaping)


@dataclass(frozen=True)
class Labels:
    """What a reader adds to every sample: name prefix and scope (and resource) labels.

    ``fixed`` maps sanitized label names to values, as the reader's collector builds
    them (``otel_scope_name``, ``otel_scope_version``, ``otel_scope_schema_url``...)."""

    fixed: tuple[tuple[str, str], ...]
    name: Callable[[str], str] = sanitize_full_name


class _Collected:
    """A collector holding ready families (to run an encoder on them)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> list[Metric]:
        return self.families


def encode(families: Iterable[Metric], encoder: Callable[..., bytes]) -> bytes:
    """``families`` as ``encoder`` writes them, without OpenMetrics' closing ``# EOF``."""
    return encoder(_Collected(families)).removesuffix(b"# EOF\n")


def _escape(value: str) -> str:
    # Label values, as prometheus_client escapes them in both formats.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _family(spec: MetricSpec, name: str, labels: Iterable[str] = ()) -> Metric:
    """An empty family built as the OTel reader builds it (name, unit suffix, type)."""
    factory = _FACTORIES.get(spec.instrument, GaugeMetricFamily)
    return factory(  # type: ignore[no-any-return]
        name=name,
        documentation=spec.description or "",
        labels=list(labels),
        unit=map_unit(spec.unit or ""),
    )


def _bucket_template(name: str, les: tuple[str, ...], fast: bool) -> str:
    """``str.format`` template of one series: args before-le, after-le, all labels,
    the cumulative counts, the count and the sum."""
    tail = ".0" if fast else ""
    lines = [
        f'{name}_bucket{{{{{{0}}le="{le}"{{1}}}}}} {{{i + 3}}}{tail}\n' for i, le in enumerate(les)
    ]
    if float(les[0]) >= 0:  # prometheus_client drops count and sum after a negative bound
        n = len(les) + 3
        lines.append(f"{name}_count{{{{{{2}}}}}} {{{n}}}{tail}\n")
        lines.append(f"{name}_sum{{{{{{2}}}}}} {{{n + 1}}}\n")
    return "".join(lines)


class Renderer:
    """Renders Snapshots; keeps header lines, templates and per-series label strings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._headers: dict[tuple[Any, ...], str] = {}
        self._templates: dict[tuple[Any, ...], str] = {}
        self._series: dict[str, tuple[tuple[Any, ...], dict[Any, Any]]] = {}
        self._cached = 0
        self._epoch: Any = None

    def reset_if(self, epoch: Any) -> None:
        """Drop the label cache when ``epoch`` (the storage's start time) changed."""
        if epoch != self._epoch:
            with self._lock:
                self._series = {}
                self._cached = 0
                self._epoch = epoch

    def _header(self, spec: MetricSpec, name: str, encoder: Callable[..., bytes]) -> str:
        key = (spec.name, name, dialect_of(encoder))
        header = self._headers.get(key)
        if header is None:
            header = self._headers[key] = encode([_family(spec, name)], encoder).decode()
        return header

    def _cache(self, name: str, key: tuple[Any, ...]) -> dict[Any, Any]:
        """The label strings of family ``name`` under ``key`` (its label names and fixed
        labels); a family whose label names changed starts over."""
        found = self._series.get(name)
        if found is not None and found[0] == key and self._cached <= MAX_CACHED_SERIES:
            return found[1]  # type: ignore[no-any-return]
        with self._lock:
            if self._cached > MAX_CACHED_SERIES:
                self._series, self._cached = {}, 0
            cache: dict[Any, Any] = {}
            dropped = self._series.get(name)
            self._cached -= len(dropped[1]) if dropped is not None else 0
            self._series[name] = (key, cache)
        return cache

    def render(
        self,
        snapshot: Snapshot,
        encoder: Callable[..., bytes],
        labels: Labels,
        *,
        skip: frozenset[str] = frozenset(),
    ) -> list[bytes]:
        """The families of ``snapshot`` in the dialect of ``encoder`` (which must be
        :attr:`Dialect.direct`), in the producer's order: histograms, counters, gauges,
        each family where its first series is. ``skip``: metric names left out. Returns
        UTF-8 chunks (the page is never one big string)."""
        out = _Chunks()
        for spec, keys in _grouped(snapshot.histograms, skip):
            self._histogram(spec, keys, snapshot, encoder, labels, out)
        for spec, keys in _grouped(snapshot.counters, skip):
            self._numbers(spec, keys, snapshot.counters, encoder, labels, out, "_total")
        for spec, keys in _grouped(snapshot.gauges, skip):
            self._numbers(spec, keys, snapshot.gauges, encoder, labels, out, "")
        return out.done()

    def _label_names(
        self, spec: MetricSpec, keys: list[Any], labels: Labels, pid: bool
    ) -> tuple[str, ...]:
        """Every label name of the family, sorted as prometheus_client sorts them: the
        fixed ones and each attribute with a non-empty value in some series (the reader
        fills "" for the others)."""
        columns = zip_longest(*(key[1] for key in keys), fillvalue="")
        present = [a for a, col in zip(spec.attributes, columns, strict=False) if any(col)]
        names = {sanitize_attribute(attribute) for attribute in present}
        names.update(k for k, _ in labels.fixed)
        if pid and any(key[2] for key in keys):
            names.add(sanitize_attribute(semconv.PROCESS_PID))
        return tuple(sorted(names))

    def _pairs(
        self, spec: MetricSpec, names: tuple[str, ...], labels: Labels, values: Any, process: str
    ) -> list[tuple[str, str]]:
        found = dict(labels.fixed)
        for attribute, value in zip(spec.attributes, values, strict=False):
            if value:
                found[sanitize_attribute(attribute)] = value
        if process:
            found[sanitize_attribute(semconv.PROCESS_PID)] = process
        return [(k, f'{k}="{_escape(found.get(k, ""))}"') for k in names]

    def _histogram(
        self,
        spec: MetricSpec,
        keys: list[Any],
        snapshot: Snapshot,
        encoder: Callable[..., bytes],
        labels: Labels,
        out: _Chunks,
    ) -> None:
        name = _family(spec, labels.name(spec.name)).name
        bounds = snapshot.bounds.get(spec.name, spec.buckets or ())
        les = (*(f"{b}" for b in bounds), "+Inf")
        names = self._label_names(spec, keys, labels, pid=False)
        fast = self._templates.get((name, les, True))
        if fast is None:
            fast = self._templates[(name, les, True)] = _bucket_template(name, les, True)
        slow = self._templates.get((name, les, False))
        if slow is None:
            slow = self._templates[(name, les, False)] = _bucket_template(name, les, False)
        cache = self._cache(name, (names, labels.fixed))
        histograms = snapshot.histograms
        out.append(self._header(spec, name, encoder))
        append, tick = out.append, out.tick
        for n, key in enumerate(keys):
            parts = cache.get(key[1])
            if parts is None:
                pairs = self._pairs(spec, names, labels, key[1], "")
                plain = ",".join(p for _, p in pairs)
                before = "".join(f"{p}," for k, p in pairs if k < "le")
                after = "".join(f",{p}" for k, p in pairs if k > "le")
                parts = cache[key[1]] = (before, after, plain)
                self._cached += 1
            data = histograms[key]
            counts = tuple(accumulate(data.bucket_counts))
            total = counts[-1]
            if type(total) is int and 0 <= total < _INT_FAST:
                append(fast.format(*parts, *counts, total, _go(data.sum)))
            else:
                text = [floatToGoString(c) for c in counts]
                append(slow.format(*parts, *text, text[-1], _go(data.sum)))
            if n % _CHUNK == 0:
                tick()

    def _numbers(
        self,
        spec: MetricSpec,
        keys: list[Any],
        points: dict[Any, float],
        encoder: Callable[..., bytes],
        labels: Labels,
        out: _Chunks,
        suffix: str,
    ) -> None:
        name = _family(spec, labels.name(spec.name)).name
        gauge = suffix == ""
        names = self._label_names(spec, keys, labels, pid=gauge)
        cache = self._cache(name, (names, labels.fixed))
        out.append(self._header(spec, name, encoder))
        sample = f"{name}{suffix}{{"
        append, tick = out.append, out.tick
        for n, key in enumerate(keys):
            ident = key[1:]
            plain = cache.get(ident)
            if plain is None:
                process = key[2] if gauge else ""
                pairs = self._pairs(spec, names, labels, key[1], process)
                plain = cache[ident] = ",".join(p for _, p in pairs)
                self._cached += 1
            append(f"{sample}{plain}}} {_go(points[key])}\n")
            if n % _CHUNK == 0:
                tick()


class _Chunks:
    """The rendered text as UTF-8 chunks, with a GIL checkpoint after each."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.append = self.pending.append
        self.chunks: list[bytes] = []

    def tick(self) -> None:
        self.chunks.append("".join(self.pending).encode())
        self.pending.clear()
        checkpoint()

    def done(self) -> list[bytes]:
        self.tick()
        return [chunk for chunk in self.chunks if chunk]


_INF = float("inf")


def _go(value: float) -> str:
    """``floatToGoString``, with its common case (a float below 1e6) inlined."""
    if type(value) is float and -_INF < value < 1e6:
        return repr(value)
    return floatToGoString(value)


def _grouped(points: dict[Any, Any], skip: frozenset[str]) -> list[tuple[MetricSpec, list[Any]]]:
    """Keys of ``points`` per metric in the table, in order of each metric's first key."""
    groups: dict[str, list[Any]] = {}
    for key in points:
        keys = groups.get(key[0])
        if keys is None:
            keys = groups[key[0]] = []
        keys.append(key)
    return [
        (_SPECS[name], keys) for name, keys in groups.items() if name in _SPECS and name not in skip
    ]
