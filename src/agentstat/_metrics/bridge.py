"""Hands agentstat's pre-aggregated histograms to an SDK MeterProvider's readers.

The OpenTelemetry specification calls this a *MetricProducer*: a source of already
aggregated metrics that a reader merges into its collection. OpenTelemetry Python has
no public MetricProducer API yet, so we wrap the provider's measurement consumer's
``collect`` (the callback every reader calls) and append our points to what it returns.
This touches two private SDK attributes (``_measurement_consumer`` and
``_reader_storages``); if they are missing, :func:`attach` says so once and returns
False, and the histograms are not exported (the rest of agentstat keeps working).

Temporality follows each reader's preference for histograms: cumulative points are
emitted as they are; for a delta reader the previous snapshot is subtracted (min and
max are then the process-lifetime values, the only ones a bucket array keeps).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry.sdk.metrics._internal.instrument import _Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from agentstat._metrics.histograms import HistogramSnapshot
from agentstat._metrics.store import STORE, Store
from agentstat.version import __version__

_logger = logging.getLogger(__name__)

SCOPE = InstrumentationScope("agentstat", __version__)
_MARK = "_agentstat_producer"


class _Producer:
    """Turns the store into OTel ``Metric`` objects for one reader at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.enabled = True
        # reader -> {(metric name, attribute items): snapshot}, for delta readers only
        self._previous: dict[Any, dict[tuple[str, tuple[tuple[str, str], ...]], Any]] = {}
        self._previous_time: dict[Any, int] = {}
        self._lock = threading.Lock()

    def metrics_for(self, reader: Any) -> list[Metric]:
        if not self.enabled:
            return []
        temporality = getattr(reader, "_instrument_class_temporality", {}).get(
            HistogramInstrument, AggregationTemporality.CUMULATIVE
        )
        now = time.time_ns()
        delta = temporality is AggregationTemporality.DELTA
        with self._lock:
            start = self._previous_time.get(reader, self.store.start_time_unix_nano)
            if not delta:
                start = self.store.start_time_unix_nano
            previous = self._previous.setdefault(reader, {}) if delta else {}
            metrics = []
            for family in self.store.families():
                points = []
                # A series that exists is exported from 0 (a pool's wait histogram is
                # created with the pool): "0 waits", not "No data", before the first one.
                for snap in family.snapshots():
                    if delta:
                        key = (family.spec.name, tuple(sorted(snap.attributes.items())))
                        before = previous.get(key)
                        previous[key] = snap
                        snap = _subtract(snap, before)
                    points.append(_point(snap, family.spec.buckets or (), start, now))
                if points:
                    metrics.append(
                        Metric(
                            name=family.spec.name,
                            description=family.spec.description,
                            unit=family.spec.unit,
                            data=Histogram(data_points=points, aggregation_temporality=temporality),
                        )
                    )
            if delta:
                self._previous_time[reader] = now
            return metrics


def _subtract(snap: HistogramSnapshot, before: HistogramSnapshot | None) -> HistogramSnapshot:
    if before is None:
        return snap
    counts = [a - b for a, b in zip(snap.bucket_counts, before.bucket_counts, strict=True)]
    return HistogramSnapshot(
        attributes=snap.attributes,
        bucket_counts=counts,
        count=snap.count - before.count,
        sum=snap.sum - before.sum,
        min=snap.min,
        max=snap.max,
    )


def _point(snap: HistogramSnapshot, bounds: tuple[float, ...], start: int, now: int):
    return HistogramDataPoint(
        attributes=snap.attributes,
        start_time_unix_nano=start,
        time_unix_nano=now,
        count=snap.count,
        sum=snap.sum,
        bucket_counts=snap.bucket_counts,
        explicit_bounds=list(bounds),
        min=snap.min,
        max=snap.max,
    )


def _merge(data: MetricsData | None, extra: list[Metric], resource: Any) -> MetricsData | None:
    if not extra:
        return data
    if data is None or not data.resource_metrics:
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=resource,
                    scope_metrics=[ScopeMetrics(scope=SCOPE, metrics=extra, schema_url="")],
                    schema_url="",
                )
            ]
        )
    first = data.resource_metrics[0]
    merged = ResourceMetrics(
        resource=first.resource,
        scope_metrics=[
            *first.scope_metrics,
            ScopeMetrics(scope=SCOPE, metrics=extra, schema_url=""),
        ],
        schema_url=first.schema_url,
    )
    return MetricsData(resource_metrics=[merged, *data.resource_metrics[1:]])


def attach(meter_provider: Any, store: Store = STORE) -> _Producer | None:
    """Make every reader of ``meter_provider`` export ``store``; idempotent.

    Returns the producer (disable it with ``producer.enabled = False``), or None when the
    provider is not an OpenTelemetry SDK MeterProvider we know how to extend.
    """
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    readers = getattr(consumer, "_reader_storages", None)
    if consumer is None or readers is None:
        if "Proxy" in type(meter_provider).__name__:
            _logger.warning(
                "agentstat: no MeterProvider is set yet; set one (or pass meter_provider=) "
                "before instrumenting, or agent and tool histograms will not be exported"
            )
            return None
        _logger.warning(
            "agentstat: meter provider %s is not an OpenTelemetry SDK MeterProvider; "
            "agent and tool histograms will not be exported through it",
            type(meter_provider).__name__,
        )
        return None
    existing = getattr(consumer, _MARK, None)
    if existing is not None:
        existing.enabled = True
        return existing
    producer = _Producer(store)
    original = consumer.collect
    resource = meter_provider._sdk_config.resource

    def collect(reader: Any, timeout_millis: float = 10_000) -> MetricsData | None:
        data = original(reader, timeout_millis=timeout_millis)
        try:
            return _merge(data, producer.metrics_for(reader), resource)
        except Exception:  # never break the user's whole scrape because of ours
            _logger.exception("agentstat: could not add histograms to the collection")
            return data

    consumer.collect = collect
    setattr(consumer, _MARK, producer)
    for reader in list(readers):
        reader._set_collect_callback(collect)
    return producer
