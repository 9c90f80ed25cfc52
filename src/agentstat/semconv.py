"""The one table of everything agentstat emits.

Wrappers, the runtime primitives, the rule and dashboard generators, the ``check``
command, the demo, the tests and the docs all read metric names, units, attributes and
bucket boundaries from here, and the facts of each timed operation (agent, tool) from
its :class:`Operation` record. Nothing else spells a metric name. The performance
objectives live with the rules, in :mod:`agentstat.ops.objectives`.

Agent, tool and workflow durations follow the OpenTelemetry GenAI semantic conventions
(``gen_ai.invoke_agent.duration``, ``gen_ai.execute_tool.duration``,
``gen_ai.workflow.duration``); everything that the conventions do not define lives in
the ``agentstat.`` namespace.

Prometheus names are derived exactly as the OpenTelemetry Prometheus exporter derives
them (characters outside ``[a-zA-Z0-9:]`` become ``_``, the unit ``s`` becomes the
``_seconds`` suffix, curly-brace units and ``1`` add nothing, counters get ``_total``).
A test compares them with a live ``/metrics`` page.

Why one long module: it is the one table; splitting it would make two places that
spell metric names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# --------------------------------------------------------------------------- attributes

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
ERROR_TYPE = "error.type"

CACHE_NAME = "agentstat.cache.name"
CACHE_TIER = "agentstat.cache.tier"
CACHE_RESULT = "agentstat.cache.result"
CACHE_EVICTION_REASON = "agentstat.cache.eviction.reason"
POOL_NAME = "agentstat.balancer.pool"
INSTANCE_ID = "agentstat.balancer.instance.id"
RETRY_TARGET = "agentstat.retry.target"
#: On gauges served for many processes at one endpoint (multi-process mode): the process
#: that reports the value, so rules can judge each process (Prometheus ``process_pid``).
PROCESS_PID = "process.pid"

# ------------------------------------------------------------------------ attribute values

OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"
OPERATION_INVOKE_WORKFLOW = "invoke_workflow"

#: ``error.type`` when the call was cancelled (``asyncio.CancelledError``, or
#: ``GeneratorExit`` on a stream the consumer abandoned). Cancellation is not a
#: failure: success-rate rules exclude it from both sides of the ratio.
ERROR_TYPE_CANCELLED = "cancelled"

#: Replaces any attribute value beyond its cardinality cap (the semantic conventions'
#: fallback value for ``error.type``, used for names too).
OTHER = "_OTHER"

#: ``agentstat.cache.tier`` of a cache that has no tiers, and of a tiered cache's
#: whole-cache (all tiers) outcome.
TIER_NONE = ""
TIER_ALL = "all"

CACHE_RESULT_HIT = "hit"
CACHE_RESULT_MISS = "miss"
EVICTION_REASON_SIZE = "size"
EVICTION_REASON_EXPIRED = "expired"

# --------------------------------------------------------------------------- buckets

#: Seconds. Contains 0.5 and 1.0 exactly, so "P95 < 500 ms" and "P95 > 1 s" are exact
#: bucket fractions in PromQL, and reaches the ten minutes that long agent runs take.
#: Every bound is a float, so the exporter writes ``le="1.0"`` (never ``le="1"``).
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

#: Seconds until a stream's first chunk.
TIME_TO_FIRST_CHUNK_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

#: Seconds a caller waited for balancer capacity.
WAIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

# ---------------------------------------------------------------------------- the table


class Instrument(StrEnum):
    """The instrument a metric is (its Prometheus shape follows)."""

    HISTOGRAM = "histogram"
    COUNTER = "counter"  # monotonic; published at collection time
    GAUGE = "gauge"  # observed at collection time


_UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes"}
_INVALID = re.compile(r"[^a-zA-Z0-9:]")


def prometheus_label(attribute: str) -> str:
    """The label name the OTel Prometheus exporter writes for an attribute key."""
    return _INVALID.sub("_", attribute)


def le_label(bound: float) -> str:
    """The ``le`` label value written for a bucket bound (``1.0`` -> ``"1.0"``)."""
    return str(float(bound))


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its OTel identity and everything derived from it."""

    name: str
    instrument: Instrument
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] | None = None

    @property
    def prometheus_name(self) -> str:
        """Base name on ``/metrics`` (histograms add ``_bucket``/``_sum``/``_count``)."""
        name = _INVALID.sub("_", self.name)
        suffix = _UNIT_SUFFIXES.get(self.unit)
        if suffix and not name.endswith(suffix):
            name = f"{name}_{suffix}"
        if self.instrument is Instrument.COUNTER:
            name = f"{name}_total"
        return name

    @property
    def bucket(self) -> str:
        return self._series("bucket")

    @property
    def count(self) -> str:
        return self._series("count")

    @property
    def sum(self) -> str:
        return self._series("sum")

    def _series(self, suffix: str) -> str:
        if self.instrument is not Instrument.HISTOGRAM:
            raise ValueError(f"{self.name} is a {self.instrument.value}, not a histogram")
        return f"{self.prometheus_name}_{suffix}"

    def label(self, attribute: str) -> str:
        """Prometheus label name of one of this metric's attributes."""
        if attribute not in self.attributes:
            raise ValueError(f"{self.name} has no attribute {attribute!r}")
        return prometheus_label(attribute)


AGENT_DURATION = MetricSpec(
    name="gen_ai.invoke_agent.duration",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description="Duration of agent invocations; error.type is set on failure only.",
    attributes=(GEN_AI_OPERATION_NAME, GEN_AI_AGENT_NAME, ERROR_TYPE),
    buckets=DURATION_BUCKETS,
)

TOOL_DURATION = MetricSpec(
    name="gen_ai.execute_tool.duration",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description=(
        "Duration of tool executions; error.type is set on failure only, gen_ai.agent.name "
        "and gen_ai.tool.type when known."
    ),
    # gen_ai.agent.name (the agent executing the tool) and gen_ai.tool.type come last
    # and are absent when unknown, so series recorded without them keep their labels.
    attributes=(
        GEN_AI_OPERATION_NAME,
        GEN_AI_TOOL_NAME,
        ERROR_TYPE,
        GEN_AI_AGENT_NAME,
        GEN_AI_TOOL_TYPE,
    ),
    buckets=DURATION_BUCKETS,
)

WORKFLOW_DURATION = MetricSpec(
    name="gen_ai.workflow.duration",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description=(
        "Duration of coordinated multi-agent runs (a graph, a crew); error.type is set on "
        "failure only."
    ),
    attributes=(GEN_AI_OPERATION_NAME, GEN_AI_WORKFLOW_NAME, ERROR_TYPE),
    buckets=DURATION_BUCKETS,
)

AGENT_TIME_TO_FIRST_CHUNK = MetricSpec(
    name="agentstat.invoke_agent.time_to_first_chunk",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description="Time from the start of a streaming agent call to its first chunk.",
    attributes=(GEN_AI_OPERATION_NAME, GEN_AI_AGENT_NAME),
    buckets=TIME_TO_FIRST_CHUNK_BUCKETS,
)

TOOL_TIME_TO_FIRST_CHUNK = MetricSpec(
    name="agentstat.execute_tool.time_to_first_chunk",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description="Time from the start of a streaming tool call to its first chunk.",
    attributes=(GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME),
    buckets=TIME_TO_FIRST_CHUNK_BUCKETS,
)

CACHE_LOOKUPS = MetricSpec(
    name="agentstat.cache.lookups",
    instrument=Instrument.COUNTER,
    unit="{lookup}",
    description="Cache lookups by result (hit or miss), per cache and tier.",
    attributes=(CACHE_NAME, CACHE_TIER, CACHE_RESULT),
)

CACHE_EVICTIONS = MetricSpec(
    name="agentstat.cache.evictions",
    instrument=Instrument.COUNTER,
    unit="{entry}",
    description="Entries removed by the cache itself, by reason (size or expired).",
    attributes=(CACHE_NAME, CACHE_TIER, CACHE_EVICTION_REASON),
)

CACHE_SIZE = MetricSpec(
    name="agentstat.cache.size",
    instrument=Instrument.GAUGE,
    unit="{entry}",
    description="Entries currently held, per cache and tier.",
    attributes=(CACHE_NAME, CACHE_TIER),
)

CACHE_CAPACITY = MetricSpec(
    name="agentstat.cache.capacity",
    instrument=Instrument.GAUGE,
    unit="{entry}",
    description="Maximum entries, per cache and tier.",
    attributes=(CACHE_NAME, CACHE_TIER),
)

INSTANCE_LOAD = MetricSpec(
    name="agentstat.balancer.instance.load",
    instrument=Instrument.GAUGE,
    unit="{request}",
    description="Requests currently in flight on a balanced instance.",
    attributes=(POOL_NAME, INSTANCE_ID),
)

INSTANCE_CAPACITY = MetricSpec(
    name="agentstat.balancer.instance.capacity",
    instrument=Instrument.GAUGE,
    unit="{request}",
    description="Maximum concurrent requests of a balanced instance.",
    attributes=(POOL_NAME, INSTANCE_ID),
)

INSTANCE_HEALTHY = MetricSpec(
    name="agentstat.balancer.instance.healthy",
    instrument=Instrument.GAUGE,
    unit="1",
    description="1 while the instance takes traffic, 0 while it is ejected or unhealthy.",
    attributes=(POOL_NAME, INSTANCE_ID),
)

BALANCER_SELECTIONS = MetricSpec(
    name="agentstat.balancer.selections",
    instrument=Instrument.COUNTER,
    unit="{selection}",
    description="Times the balancer chose an instance.",
    attributes=(POOL_NAME, INSTANCE_ID),
)

BALANCER_REJECTIONS = MetricSpec(
    name="agentstat.balancer.rejections",
    instrument=Instrument.COUNTER,
    unit="{rejection}",
    description="Acquisitions refused because no healthy instance had capacity in time.",
    attributes=(POOL_NAME,),
)

BALANCER_WAIT = MetricSpec(
    name="agentstat.balancer.wait.duration",
    instrument=Instrument.HISTOGRAM,
    unit="s",
    description="Time callers waited for an instance with free capacity.",
    attributes=(POOL_NAME,),
    buckets=WAIT_BUCKETS,
)

RETRY_ATTEMPTS = MetricSpec(
    name="agentstat.retry.attempts",
    instrument=Instrument.COUNTER,
    unit="{attempt}",
    description="Retries made after a failed attempt, by target and the error retried.",
    attributes=(RETRY_TARGET, ERROR_TYPE),
)

RETRY_GIVE_UPS = MetricSpec(
    name="agentstat.retry.give_ups",
    instrument=Instrument.COUNTER,
    unit="{call}",
    description="Calls that failed after retrying stopped (attempts or deadline spent).",
    attributes=(RETRY_TARGET, ERROR_TYPE),
)

ALL_METRICS: tuple[MetricSpec, ...] = (
    AGENT_DURATION,
    TOOL_DURATION,
    WORKFLOW_DURATION,
    AGENT_TIME_TO_FIRST_CHUNK,
    TOOL_TIME_TO_FIRST_CHUNK,
    CACHE_LOOKUPS,
    CACHE_EVICTIONS,
    CACHE_SIZE,
    CACHE_CAPACITY,
    INSTANCE_LOAD,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    BALANCER_SELECTIONS,
    BALANCER_REJECTIONS,
    BALANCER_WAIT,
    RETRY_ATTEMPTS,
    RETRY_GIVE_UPS,
)

# ------------------------------------------------------------------------ operations

#: The word users pass for what is timed (``@agentstat.agent``, ``AGENTSTAT_AGENTS``).
AGENT = "agent"
TOOL = "tool"
WORKFLOW = "workflow"


@dataclass(frozen=True)
class Operation:
    """One kind of timed call and everything derived from it: the wrappers record it,
    the rules, dashboards, ``agentstat check`` and the demo read it back."""

    kind: str  # the word users pass: "agent", "tool" or "workflow"
    operation_name: str  # gen_ai.operation.name value
    name_attribute: str  # the attribute naming the agent, tool or workflow
    duration: MetricSpec
    time_to_first_chunk: MetricSpec | None  # None: not streamed (workflows)
    title: str  # CamelCase part of alert names

    @property
    def name_label(self) -> str:
        """Prometheus label of the name attribute."""
        return self.duration.label(self.name_attribute)

    @property
    def error_label(self) -> str:
        """Prometheus label of ``error.type``."""
        return self.duration.label(ERROR_TYPE)


AGENT_OPERATION = Operation(
    kind=AGENT,
    operation_name=OPERATION_INVOKE_AGENT,
    name_attribute=GEN_AI_AGENT_NAME,
    duration=AGENT_DURATION,
    time_to_first_chunk=AGENT_TIME_TO_FIRST_CHUNK,
    title="Agent",
)
TOOL_OPERATION = Operation(
    kind=TOOL,
    operation_name=OPERATION_EXECUTE_TOOL,
    name_attribute=GEN_AI_TOOL_NAME,
    duration=TOOL_DURATION,
    time_to_first_chunk=TOOL_TIME_TO_FIRST_CHUNK,
    title="Tool",
)
WORKFLOW_OPERATION = Operation(
    kind=WORKFLOW,
    operation_name=OPERATION_INVOKE_WORKFLOW,
    name_attribute=GEN_AI_WORKFLOW_NAME,
    duration=WORKFLOW_DURATION,
    time_to_first_chunk=None,
    title="Workflow",
)
OPERATIONS: tuple[Operation, ...] = (AGENT_OPERATION, TOOL_OPERATION, WORKFLOW_OPERATION)


def operation(kind: str) -> Operation:
    """The operation record for ``kind`` ("agent", "tool", "workflow"); ValueError otherwise."""
    for candidate in OPERATIONS:
        if candidate.kind == kind:
            return candidate
    kinds = ", ".join(repr(o.kind) for o in OPERATIONS)
    raise ValueError(f"kind must be one of {kinds}, not {kind!r}")


# -------------------------------------------------------------------- cardinality caps

#: Distinct values one attribute may take per metric before further values become
#: ``_OTHER``. Names come from configuration or code, error types from exceptions; both
#: are bounded so a bug cannot blow up the series count. Overridable by environment.
DEFAULT_MAX_NAMES = 200
DEFAULT_MAX_ERROR_TYPES = 50
