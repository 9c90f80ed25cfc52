"""The naive instrumentation agentstat is compared with: wrapt + a record per call.

This is what an instrumentation written the usual way does (and what the issue names
as the baseline): a ``wrapt`` decorator that times the call with ``perf_counter`` and
hands the duration to a metrics library on every call: the OpenTelemetry SDK's
``Histogram.record`` or prometheus_client's ``labels(...).observe``. Attributes are
built once, outside the call, so the baseline is not handicapped by dict building.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import wrapt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry
from prometheus_client import Histogram as PromHistogram

from agentstat import semconv

Record = Callable[[float], None]
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

ATTRIBUTES = {
    semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
    semconv.GEN_AI_AGENT_NAME: "bench",
}


def otel_record() -> tuple[Record, MeterProvider]:
    """``Histogram.record`` of a stock SDK MeterProvider with one in-memory reader."""
    name = "bench.naive.duration"
    provider = MeterProvider(
        metric_readers=[InMemoryMetricReader()],
        views=[
            View(
                instrument_name=name,
                aggregation=ExplicitBucketHistogramAggregation(semconv.DURATION_BUCKETS),
            )
        ],
    )
    histogram = provider.get_meter("benchmarks.naive").create_histogram(name, unit="s")
    attributes = dict(ATTRIBUTES)

    def record(seconds: float) -> None:
        histogram.record(seconds, attributes)

    return record, provider


def prometheus_record() -> Record:
    """prometheus_client ``labels(...).observe`` on a private registry."""
    histogram = PromHistogram(
        "bench_naive_duration_seconds",
        "naive wrapper baseline",
        ["gen_ai_operation_name", "gen_ai_agent_name"],
        buckets=semconv.DURATION_BUCKETS,
        registry=CollectorRegistry(),
    )
    operation, agent = ATTRIBUTES.values()

    def record(seconds: float) -> None:
        histogram.labels(operation, agent).observe(seconds)

    return record


def sync_decorator(record: Record) -> Decorator:
    @wrapt.decorator
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        start = perf_counter()
        try:
            return wrapped(*args, **kwargs)
        finally:
            record(perf_counter() - start)

    return wrapper


def async_decorator(record: Record) -> Decorator:
    @wrapt.decorator
    async def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        start = perf_counter()
        try:
            return await wrapped(*args, **kwargs)
        finally:
            record(perf_counter() - start)

    return wrapper


def generator_decorator(record: Record) -> Decorator:
    @wrapt.decorator
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        start = perf_counter()
        try:
            return (yield from wrapped(*args, **kwargs))
        finally:
            record(perf_counter() - start)

    return wrapper


def async_generator_decorator(record: Record) -> Decorator:
    @wrapt.decorator
    async def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        start = perf_counter()
        try:
            async for item in wrapped(*args, **kwargs):
                yield item
        finally:
            record(perf_counter() - start)

    return wrapper


DECORATORS: dict[str, Callable[[Record], Decorator]] = {
    "sync": sync_decorator,
    "async": async_decorator,
    "generator": generator_decorator,
    "async generator": async_generator_decorator,
}
