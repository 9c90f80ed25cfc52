"""The one producer: everything agentstat recorded, as OpenTelemetry metrics.

The OpenTelemetry specification calls this a *MetricProducer*: a source of already
aggregated metrics that a reader adds to its collection. Histograms (the store) and
counters and gauges (the counts registry) arrive together as one
:class:`~agentstat._metrics.snapshot.Snapshot` from the storage chosen for the process
(:func:`agentstat._metrics.store.storage`) and leave as explicit-bucket ``Histogram``,
monotonic ``Sum`` and ``Gauge`` metrics under the ``agentstat`` scope. How the metrics
reach a reader (private SDK attributes) is :mod:`agentstat._metrics.bridge`'s business;
this module only uses the SDK's public data classes.

Temporality follows each reader's preference: cumulative points are emitted as they are;
for a delta reader the previous snapshot is subtracted (histogram min and max are then
the lifetime values, the only ones a bucket array keeps).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from agentstat import semconv
from agentstat._metrics.snapshot import Snapshot
from agentstat._metrics.store import Storage, storage
from agentstat.semconv import Instrument, MetricSpec
from agentstat.version import __version__

SCOPE = InstrumentationScope("agentstat", __version__)

CUMULATIVE = AggregationTemporality.CUMULATIVE
DELTA = AggregationTemporality.DELTA


def _attributes(spec: MetricSpec, values: tuple[str, ...]) -> dict[str, str]:
    # Empty values (a cache without tiers, success's error.type) are left out.
    return {key: value for key, value in zip(spec.attributes, values, strict=False) if value}


def _known(specs: dict[str, MetricSpec], points: dict[Any, Any]) -> Iterator[tuple[Any, ...]]:
    """``(spec, attribute values, value)`` of the points whose metric is in the table."""
    for (name, values), value in points.items():
        spec = specs.get(name)
        if spec is not None:
            yield spec, values, value


class Producer:
    """Builds agentstat's metrics for one reader at a time.

    ``enabled`` False makes it produce nothing (uninstrument). ``source``: where values
    are read (default: the storage chosen for the process, looked up at each collection).
    ``reader`` is only a key for the previous snapshot of delta readers.
    """

    def __init__(self, source: Storage | None = None) -> None:
        self.source = source
        self.enabled = True
        self._previous: dict[Any, tuple[int, Snapshot]] = {}
        self._lock = threading.Lock()

    def metrics(
        self,
        reader: Any,
        *,
        all_processes: bool = False,
        histogram_temporality: AggregationTemporality = CUMULATIVE,
        counter_temporality: AggregationTemporality = CUMULATIVE,
    ) -> list[Metric]:
        if not self.enabled:
            return []
        source = self.source or storage()
        snapshot = source.collect(all_processes=all_processes)
        now = time.time_ns()
        start = source.start_time_unix_nano
        delta_start = start
        before = Snapshot()
        if DELTA in (histogram_temporality, counter_temporality):
            with self._lock:
                delta_start, before = self._previous.get(reader, (start, before))
                self._previous[reader] = (now, snapshot)
        specs = {spec.name: spec for spec in semconv.ALL_METRICS}
        built: dict[str, list[Any]] = {}

        hist_delta = histogram_temporality is DELTA
        hist_start = delta_start if hist_delta else start
        for spec, values, data in _known(specs, snapshot.histograms):
            if hist_delta:
                data = data.minus(before.histograms.get((spec.name, values)))
            point = HistogramDataPoint(
                attributes=_attributes(spec, values),
                start_time_unix_nano=hist_start,
                time_unix_nano=now,
                count=data.count,
                sum=data.sum,
                bucket_counts=list(data.bucket_counts),
                explicit_bounds=list(snapshot.bounds.get(spec.name, spec.buckets or ())),
                min=data.min,
                max=data.max,
            )
            built.setdefault(spec.name, []).append(point)

        count_delta = counter_temporality is DELTA
        count_start = delta_start if count_delta else start
        for spec, values, value in _known(specs, snapshot.counters):
            if count_delta:
                value -= before.counters.get((spec.name, values), 0)
            attributes = _attributes(spec, values)
            point = NumberDataPoint(attributes, count_start, now, value)
            built.setdefault(spec.name, []).append(point)

        for (name, values, process), value in snapshot.gauges.items():
            spec = specs.get(name)
            if spec is None:
                continue
            attributes = _attributes(spec, values)
            if process:
                attributes[semconv.PROCESS_PID] = process
            built.setdefault(name, []).append(NumberDataPoint(attributes, 0, now, value))

        metrics = []
        for name, points in built.items():
            spec = specs[name]
            data: Any
            if spec.instrument is Instrument.HISTOGRAM:
                data = Histogram(data_points=points, aggregation_temporality=histogram_temporality)
            elif spec.instrument is Instrument.COUNTER:
                data = Sum(
                    data_points=points,
                    aggregation_temporality=counter_temporality,
                    is_monotonic=True,
                )
            else:
                data = Gauge(data_points=points)
            metrics.append(
                Metric(name=name, description=spec.description, unit=spec.unit, data=data)
            )
        return metrics
