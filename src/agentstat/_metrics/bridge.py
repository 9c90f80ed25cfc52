"""Hands the producer's metrics to an SDK MeterProvider's readers: every private SDK access.

OpenTelemetry Python has no public MetricProducer API yet, so :func:`attach` wraps the
provider's measurement consumer's ``collect`` (the callback every reader calls) and
appends the producer's metrics (:mod:`agentstat._metrics.producer`) to what it returns.
Private SDK attributes are read here and nowhere else, each guarded:

- ``MeterProvider._measurement_consumer`` and its ``_reader_storages``: where to hook; if
  they are missing, :func:`attach` says so once and returns None (nothing is exported
  through that provider; the rest of agentstat keeps working);
- ``MetricReader._instrument_class_temporality``: a reader's preferred temporality
  (cumulative when unreadable);
- ``MeterProvider._sdk_config.resource``: the resource, read at every collection (not
  once), so a resource a forked child gets is the one it exports under;
- ``TracerProvider._active_span_processor._span_processors``: whether spans would go
  anywhere (:func:`tracing_configured`);
- ``PrometheusMetricReader._collector`` (its ``_build_scope_attrs``,
  ``_build_resource_attrs``, ``_check_value``, ``_resolve_metric_name`` and
  ``_translate_to_prometheus``): the labels and names agentstat's own endpoint renders
  with (:func:`reader_labels`, :func:`stock_families`).

Every collection's resource also gets this process's ``service.instance.id`` unless the
resource names one already: processes of one service (a pre-fork server's workers,
forked children included) then export as distinct instances over OTLP.

agentstat's own endpoints render its families straight from the store
(:mod:`agentstat._metrics.exposition`, :mod:`agentstat._metrics.page`): while such an
endpoint renders (:func:`direct_collection`, a thread-local scope), the hooked
``collect`` gives a reader marked with :func:`render_directly` everything but
agentstat's metrics, and records what the page needs instead (:class:`DirectPart`). Any
other collection — OTLP, another reader, the same reader scraped by someone else's
``generate_latest`` — gets the producer's metrics as before.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource

from agentstat import semconv
from agentstat._metrics.producer import SCOPE, Producer

if TYPE_CHECKING:  # the Prometheus side is imported by the endpoint that renders it
    from agentstat._metrics.exposition import Labels

_logger = logging.getLogger("agentstat")

_MARK = "_agentstat_producer"
SERVICE_INSTANCE_ID = "service.instance.id"

_instance_id = str(uuid.uuid4())


def instance_id() -> str:
    """This process's ``service.instance.id`` (a new one in every forked child)."""
    return _instance_id


def _new_instance_id() -> None:
    global _instance_id
    _instance_id = str(uuid.uuid4())


os.register_at_fork(after_in_child=_new_instance_id)

#: Readers that serve every process of a multi-process storage (the endpoint's).
_all_process_readers: weakref.WeakSet[Any] = weakref.WeakSet()


def serve_all_processes(reader: MetricReader) -> None:
    """Make ``reader`` collect the values of every process sharing this one's storage
    (the endpoint's reader); other readers (OTLP) see this process only."""
    _all_process_readers.add(reader)


#: Readers agentstat's own endpoint renders directly (see the module docstring).
_direct_readers: weakref.WeakSet[Any] = weakref.WeakSet()
_rendering = threading.local()


def render_directly(reader: MetricReader) -> None:
    """Let agentstat's endpoint render ``reader``'s share of agentstat's metrics itself
    (only inside :func:`direct_collection`; other collections are unchanged)."""
    _direct_readers.add(reader)


@dataclass(frozen=True)
class DirectPart:
    """What one direct reader's collection left for the page to render: whose values
    (``producer``, ``all_processes``), under which resource, and the metric names the
    collection carried itself (``stock_names``: names a user's instrument shares, so the
    reader merges both into one family as before)."""

    reader: Any
    producer: Producer
    all_processes: bool
    resource: Resource
    stock_names: frozenset[str]


@contextmanager
def direct_collection() -> Iterator[list[DirectPart]]:
    """Collections run by this thread inside the block leave agentstat's metrics out
    for direct readers and list them in the yielded list instead."""
    parts: list[DirectPart] = []
    previous = getattr(_rendering, "parts", None)
    _rendering.parts = parts
    try:
        yield parts
    finally:
        _rendering.parts = previous


def reader_labels(reader: Any, resource: Resource) -> Labels:
    """The labels and name resolution ``reader`` adds to every sample (scope labels;
    resource labels when it was given a filter), as its collector computes them."""
    from opentelemetry.exporter.prometheus._mapping import sanitize_attribute

    from agentstat._metrics.exposition import Labels

    collector = getattr(reader, "_collector", None)
    try:
        found = chain(
            collector._build_resource_attrs(resource).items(),  # type: ignore[union-attr]
            collector._build_scope_attrs(SCOPE).items(),  # type: ignore[union-attr]
        )
        fixed = {sanitize_attribute(k): collector._check_value(v) for k, v in found}  # type: ignore[union-attr]
        return Labels(tuple(fixed.items()), collector._resolve_metric_name)  # type: ignore[union-attr]
    except Exception:
        scope = {
            "otel_scope_name": SCOPE.name,
            "otel_scope_version": SCOPE.version or "",
            "otel_scope_schema_url": SCOPE.schema_url or "",
        }
        return Labels(tuple(scope.items()))


def stock_families(part: DirectPart) -> list[Any]:
    """agentstat's prometheus_client families for ``part`` through the reader's own
    translation (the page's exact but slow path: ``name[]`` filters, rare escapings)."""
    metrics = part.producer.metrics(part.reader, all_processes=part.all_processes)
    metrics = [m for m in metrics if m.name not in part.stock_names]
    scope = ScopeMetrics(scope=SCOPE, metrics=metrics, schema_url="")
    data = MetricsData([ResourceMetrics(part.resource, [scope], schema_url="")])
    families: dict[str, Any] = {}
    part.reader._collector._translate_to_prometheus(data, families)
    return list(families.values())


def _names(data: MetricsData | None) -> set[str]:
    if data is None:
        return set()
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def tracing_configured(provider: Any) -> bool:
    """True when spans would go somewhere: not a no-op/proxy provider, and (for the SDK's
    provider) at least one span processor that is not a reader of agentstat's own (the
    GenAI span bridge reads spans into metrics; it must not switch agentstat's on)."""
    from opentelemetry import trace

    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False
    processor = getattr(provider, "_active_span_processor", None)
    if processor is None:
        return True
    processors = getattr(processor, "_span_processors", None)
    if processors is None:
        return True
    return any(not getattr(p, "agentstat_reads_only", False) for p in processors)


def global_meter_provider_is_set() -> bool:
    """Whether a real global MeterProvider is set (setting another only warns)."""
    from opentelemetry import metrics

    return type(metrics.get_meter_provider()).__name__ != "ProxyMeterProvider"


def _temporality(reader: Any, instrument: str) -> AggregationTemporality:
    try:
        for cls, value in reader._instrument_class_temporality.items():
            if cls.__name__ == instrument:
                return AggregationTemporality(value)
    except Exception:
        pass
    return AggregationTemporality.CUMULATIVE


def _resource(meter_provider: Any) -> Resource:
    try:
        resource = meter_provider._sdk_config.resource
    except Exception:
        resource = Resource.get_empty()
    if SERVICE_INSTANCE_ID in resource.attributes:
        return resource
    return resource.merge(Resource({SERVICE_INSTANCE_ID: _instance_id}))


def _merge(data: MetricsData | None, extra: list[Any], resource: Resource) -> MetricsData:
    """The SDK's collection under ``resource``, with ``extra`` in agentstat's scope."""
    ours = [ScopeMetrics(scope=SCOPE, metrics=extra, schema_url="")] if extra else []
    if data is None or not data.resource_metrics:
        return MetricsData(
            resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=ours, schema_url="")]
        )
    first, *rest = data.resource_metrics
    merged = ResourceMetrics(
        resource=resource,
        scope_metrics=[*first.scope_metrics, *ours],
        schema_url=first.schema_url,
    )
    rest = [ResourceMetrics(resource, r.scope_metrics, r.schema_url) for r in rest]
    return MetricsData(resource_metrics=[merged, *rest])


def attach(meter_provider: Any, producer: Producer | None = None) -> Producer | None:
    """Make every reader of ``meter_provider`` export agentstat's metrics; idempotent.

    Returns the producer (disable it with ``producer.enabled = False``), or None when the
    provider is not an OpenTelemetry SDK MeterProvider we know how to extend.
    """
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    readers = getattr(consumer, "_reader_storages", None)
    if consumer is None or readers is None:
        if "Proxy" in type(meter_provider).__name__:
            _logger.warning(
                "agentstat: no MeterProvider is set yet; set one (or pass meter_provider=) "
                "before instrumenting, or agentstat's metrics will not be exported"
            )
            return None
        _logger.warning(
            "agentstat: meter provider %s is not an OpenTelemetry SDK MeterProvider; "
            "agentstat's metrics will not be exported through it",
            type(meter_provider).__name__,
        )
        return None
    existing = getattr(consumer, _MARK, None)
    if existing is not None:
        existing.enabled = True
        return existing
    producer = producer or Producer()
    original = consumer.collect

    def collect(reader: Any, timeout_millis: float = 10_000) -> MetricsData | None:
        data = original(reader, timeout_millis=timeout_millis)
        parts = getattr(_rendering, "parts", None)
        try:
            if parts is not None and reader in _direct_readers:
                return _direct(reader, data, parts)
            extra = producer.metrics(
                reader,
                all_processes=reader in _all_process_readers,
                histogram_temporality=_temporality(reader, "_Histogram"),
                counter_temporality=_temporality(reader, "_ObservableCounter"),
            )
            return _merge(data, extra, _resource(meter_provider))
        except Exception:  # never break the user's whole scrape because of ours
            _logger.exception("agentstat: could not add its metrics to the collection")
            return data

    def _direct(reader: Any, data: MetricsData | None, parts: list[DirectPart]) -> MetricsData:
        resource = _resource(meter_provider)
        all_processes = reader in _all_process_readers
        shared = frozenset(_names(data) & {spec.name for spec in semconv.ALL_METRICS})
        extra = []
        if shared:  # a user's instrument of the same name: one family, as before
            extra = producer.metrics(reader, all_processes=all_processes)
            extra = [m for m in extra if m.name in shared]
        if producer.enabled:
            parts.append(DirectPart(reader, producer, all_processes, resource, shared))
        return _merge(data, extra, resource)

    consumer.collect = collect
    setattr(consumer, _MARK, producer)
    try:
        for reader in list(readers):
            reader._set_collect_callback(collect)
    except Exception:
        _logger.warning("agentstat: could not hook this provider's readers", exc_info=True)
    return producer
