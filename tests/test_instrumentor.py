"""AgentstatInstrumentor: wrapping by path, restoring, reporting bad targets, exporting."""

from __future__ import annotations

import importlib
import inspect
import logging
import sys

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import agentstat.testing
from agentstat import semconv
from agentstat.errors import TargetError
from agentstat.instrumentation import AgentstatInstrumentor
from tests.metrics_util import points

AGENT = semconv.AGENT_DURATION
TOOL = semconv.TOOL_DURATION


def test_functions_methods_static_and_class_methods_are_wrapped_by_path(
    app, meter_provider
) -> None:
    """Every supported callable kind is recorded under its configured or default name."""
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider,
        agents=[f"{app}:plan", f"{app}:Researcher.run=researcher", f"{app}:Researcher.helper"],
        tools=[f"{app}:search=web_search", f"{app}:Researcher.build"],
    )
    assert module.plan("x") == "plan:x"
    with pytest.raises(ValueError):
        module.plan("fail")
    assert module.Researcher().run("t") == "Researcher:t"
    assert module.Researcher.helper(2) == 4 and module.Researcher().helper(3) == 6
    assert module.Researcher.build(1) == (module.Researcher, 1)
    import asyncio

    assert asyncio.run(module.search("q")) == ["q"]
    assert inspect.iscoroutinefunction(module.search)
    assert module.plan.__doc__ == "Plan a task."
    assert agentstat.testing.calls("agent", "plan") == 1
    assert agentstat.testing.calls("agent", "plan", "ValueError") == 1
    assert agentstat.testing.calls("agent", "researcher") == 1
    assert agentstat.testing.calls("agent", "Researcher.helper") == 2
    assert agentstat.testing.calls("tool", "web_search") == 1
    assert agentstat.testing.calls("tool", "Researcher.build") == 1


def test_module_imported_after_instrumentation_is_wrapped_on_import(app, meter_provider) -> None:
    """A target whose module is imported later is wrapped by the post-import hook."""
    assert app not in sys.modules
    AgentstatInstrumentor().instrument(meter_provider=meter_provider, agents=[f"{app}:plan"])
    module = importlib.import_module(app)
    module.plan("late")
    assert agentstat.testing.calls("agent", "plan") == 1


def test_uninstrument_restores_the_originals(app, meter_provider) -> None:
    """After uninstrument() every attribute is the very object it was before."""
    module = importlib.import_module(app)
    before = {name: module.Researcher.__dict__[name] for name in ("run", "helper", "build")}
    plan = module.plan
    instrumentor = AgentstatInstrumentor()
    instrumentor.instrument(
        meter_provider=meter_provider,
        agents=[f"{app}:plan", f"{app}:Researcher.run", f"{app}:Researcher.helper"],
        tools=[f"{app}:Researcher.build"],
    )
    assert module.plan is not plan
    instrumentor.uninstrument()
    assert module.plan is plan
    for name, raw in before.items():
        assert module.Researcher.__dict__[name] is raw
    module.plan("x")
    assert agentstat.testing.calls("agent", "plan") == 0


def test_instrumenting_twice_wraps_once(app, meter_provider) -> None:
    """A second instrument() and a duplicate entry do not double-count calls."""
    module = importlib.import_module(app)
    instrumentor = AgentstatInstrumentor()
    instrumentor.instrument(
        meter_provider=meter_provider, agents=[f"{app}:plan", f"{app}:plan=again"]
    )
    instrumentor.instrument(meter_provider=meter_provider, agents=[f"{app}:plan"])
    module.plan("x")
    assert agentstat.testing.calls("agent", "plan") == 1
    assert agentstat.testing.calls("agent", "again") == 0


def test_bad_targets_log_one_line_each_and_good_ones_still_work(
    app, meter_provider, caplog: pytest.LogCaptureFixture
) -> None:
    """Missing module/attribute, non-callable and malformed entries are skipped, loudly."""
    module = importlib.import_module(app)
    caplog.set_level(logging.ERROR, logger="agentstat")
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider,
        agents=[
            "no_such_module_xyz:plan",
            f"{app}:missing",
            f"{app}:NOT_CALLABLE",
            f"{app}:Researcher",
            "malformed-entry",
            f"{app}:plan",
        ],
    )
    messages = [r.getMessage() for r in caplog.records if r.name == "agentstat"]
    assert len(messages) == 5, messages
    expected = [
        "'malformed-entry'",
        "module 'no_such_module_xyz' cannot be found",
        "has no attribute 'missing'",
        "NOT_CALLABLE is a int",
        "Researcher is a type",
    ]
    for fragment in expected:
        assert any(fragment in m for m in messages), (fragment, messages)
    module.plan("x")
    assert agentstat.testing.calls("agent", "plan") == 1


def test_strict_mode_raises_on_the_first_bad_target(app, meter_provider) -> None:
    """strict=True (AGENTSTAT_STRICT=1) turns a bad target into a TargetError."""
    importlib.import_module(app)
    with pytest.raises(TargetError, match="has no attribute 'missing'"):
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=[f"{app}:missing"], strict=True
        )


def test_metrics_reach_an_otel_reader(app, meter_provider, reader: InMemoryMetricReader) -> None:
    """Recorded calls come out of the SDK reader as explicit-bucket histogram points."""
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(meter_provider=meter_provider, agents=[f"{app}:plan"])
    for _ in range(3):
        module.plan("x")
    (point,) = points(reader, AGENT)
    assert point.count == 3
    assert list(point.explicit_bounds) == list(semconv.DURATION_BUCKETS)
    assert point.attributes == {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: "plan",
    }


def test_delta_reader_gets_increments(app) -> None:
    """A reader that prefers delta temporality sees only what happened since its last read."""
    delta = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[delta])
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(meter_provider=provider, agents=[f"{app}:plan"])
    module.plan("x")
    module.plan("x")
    assert [p.count for p in points(delta, AGENT)] == [2]
    module.plan("x")
    assert [p.count for p in points(delta, AGENT)] == [1]
    provider.shutdown()


def test_prometheus_page_names_and_le_labels_match_the_table(app) -> None:
    """The exposition uses semconv's Prometheus names and writes le="1.0", never le="1"."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(meter_provider=provider, agents=[f"{app}:plan"])
    module.plan("x")
    page = generate_latest(registry).decode()
    assert f"# TYPE {AGENT.prometheus_name} histogram" in page
    assert f"{AGENT.bucket}{{" in page
    for bound in semconv.DURATION_BUCKETS:
        assert f'le="{semconv.le_label(bound)}"' in page
    assert 'le="1.0"' in page and 'le="1"' not in page
    assert f'{AGENT.label(semconv.GEN_AI_AGENT_NAME)}="plan"' in page
    provider.shutdown()


def test_spans_only_when_a_tracer_provider_has_a_processor(app, meter_provider) -> None:
    """With a configured tracer provider each call is a span named 'invoke_agent <name>'."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    module = importlib.import_module(app)
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider, tracer_provider=tracer_provider, agents=[f"{app}:plan"]
    )
    module.plan("x")
    with pytest.raises(ValueError):
        module.plan("fail")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["invoke_agent plan", "invoke_agent plan"]
    assert spans[1].attributes[semconv.ERROR_TYPE] == "ValueError"
    assert not spans[1].status.is_ok


def test_no_spans_without_a_configured_tracer_provider(app, meter_provider) -> None:
    """An SDK TracerProvider with no span processor does not switch spans on."""
    from agentstat.instrumentation import _runners

    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider, tracer_provider=TracerProvider(), agents=[f"{app}:plan"]
    )
    assert _runners._tracer is None


def test_streaming_call_is_one_span_ending_with_the_stream(meter_provider) -> None:
    """A generator agent's span starts at the first chunk request and ends at exhaustion."""
    import agentstat

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider, tracer_provider=tracer_provider, agents=[]
    )

    @agentstat.agent("streamer")
    def stream():
        yield 1
        yield 2

    gen = stream()
    assert next(gen) == 1
    assert exporter.get_finished_spans() == ()
    assert list(gen) == [2]
    assert [s.name for s in exporter.get_finished_spans()] == ["invoke_agent streamer"]


def test_decorated_function_also_listed_by_path_is_recorded_once(tmp_path, meter_provider) -> None:
    """A function already decorated with @agent and also named in the config counts once."""
    name = f"decorated_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        "import agentstat\n\n@agentstat.agent('planner')\ndef plan():\n    return 1\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=[f"{name}:plan=other"]
        )
        module.plan()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    assert agentstat.testing.calls("agent", "planner") == 1
    assert agentstat.testing.calls("agent", "other") == 0
