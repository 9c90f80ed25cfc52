"""GenAI span bridge: invoke_agent / execute_tool / invoke_workflow spans from any
instrumentation feed agentstat's histograms, without double counts and without turning
agentstat's own spans on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import agentstat
from agentstat import semconv
from agentstat.instrumentation import AgentstatInstrumentor, _runners
from agentstat.integrations import start_run
from agentstat.integrations.genai_spans import GenAISpanInstrumentor, GenAISpanProcessor
from tests.frameworks._b import agent, run_app, series, tool, workflow


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A tracer provider with the span bridge and nothing else."""
    tracer_provider = TracerProvider()
    instrumentor = GenAISpanInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield tracer_provider
    instrumentor.uninstrument()
    tracer_provider.shutdown()


def emit(provider: TracerProvider, name: str, scope: str = "example.instrumentation", **attrs):
    """Start and end one span with these attributes (``__`` in a key reads as ``.``)."""
    tracer = provider.get_tracer(scope)
    attributes = {key.replace("__", "."): value for key, value in attrs.items()}
    return tracer.start_as_current_span(name, attributes=attributes)


def test_agent_tool_and_workflow_spans_are_recorded(provider: TracerProvider) -> None:
    """Each kind of GenAI span is one record under its name attribute; a tool span
    takes gen_ai.agent.name from the agent span above it, through other spans."""
    workflow_span = emit(provider, "invoke_workflow support",
                         gen_ai__operation__name="invoke_workflow",
                         gen_ai__workflow__name="support")  # fmt: skip
    agent_span = emit(provider, "invoke_agent triage", gen_ai__operation__name="invoke_agent",
                      gen_ai__agent__name="triage")  # fmt: skip
    chat_span = emit(provider, "chat model", gen_ai__operation__name="chat")
    tool_span = emit(provider, "execute_tool search", gen_ai__operation__name="execute_tool",
                     gen_ai__tool__name="search", gen_ai__tool__type="extension")  # fmt: skip
    with workflow_span, agent_span, chat_span, tool_span:  # nested in this order
        pass
    assert workflow("support") == 1
    assert agent("triage") == 1
    assert tool("search", agent="triage", tool_type="extension") == 1


def test_operation_read_from_span_name_when_attribute_missing(provider: TracerProvider) -> None:
    """Without gen_ai.operation.name the span name's first word gives the operation;
    a span without its name attribute (a crew or task span naming no agent) is skipped."""
    with emit(provider, "invoke_agent planner", gen_ai__agent__name="planner"):
        pass
    with emit(provider, "crewai.workflow", gen_ai__operation__name="invoke_agent"):
        pass
    assert agent("planner") == 1
    assert agent("crewai.workflow") == 0


def test_failed_spans_record_error_type_never_the_message(provider: TracerProvider) -> None:
    """A failed span records its error.type, else its exception's class, else _OTHER;
    the status message never becomes a label."""
    with emit(provider, "invoke_agent a", gen_ai__agent__name="a", error__type="timeout"):
        pass
    with pytest.raises(KeyError), emit(provider, "invoke_agent a", gen_ai__agent__name="a"):
        raise KeyError("secret prompt text")
    with emit(provider, "invoke_agent a", gen_ai__agent__name="a") as span:
        span.set_status(Status(StatusCode.ERROR, "secret prompt text"))
    assert agent("a", error="timeout") == 1
    assert agent("a", error="KeyError") == 1
    assert agent("a", error=semconv.OTHER) == 1
    assert agent("a") == 0


def test_pydantic_ai_own_instrumentation_feeds_the_histograms(provider: TracerProvider) -> None:
    """pydantic-ai's Agent.instrument_all() spans give one agent and one tool record per
    run, named from the agent and the tool."""
    pydantic_ai = pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim not installed")
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.models.instrumented import InstrumentationSettings

    def model(messages: list, info: object) -> ModelResponse:
        parts = [part for message in messages for part in getattr(message, "parts", [])]
        if any(isinstance(part, ToolReturnPart) for part in parts):
            return ModelResponse(parts=[TextPart("3")])
        return ModelResponse(parts=[ToolCallPart("add", {"a": 1, "b": 2})])

    pydantic_ai.Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
    try:
        helper = pydantic_ai.Agent(FunctionModel(model), name="helper")

        @helper.tool_plain
        def add(a: int, b: int) -> int:
            return a + b

        for _ in range(2):
            assert helper.run_sync("add 1 and 2").output == "3"
    finally:
        pydantic_ai.Agent.instrument_all(False)
    assert agent("helper") == 2
    assert tool("add", agent="helper", tool_type="") == 2


def test_agentstat_own_spans_are_never_counted() -> None:
    """With a real exporter agentstat makes its own invoke_agent spans; the bridge on the
    same provider does not count them again."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    bridge = GenAISpanInstrumentor()
    bridge.instrument(tracer_provider=tracer_provider)
    AgentstatInstrumentor().instrument(tracer_provider=tracer_provider, agents=[], tools=[])
    try:

        @agentstat.agent("planner")
        def plan() -> str:
            return "ok"

        plan()
    finally:
        AgentstatInstrumentor().uninstrument()
        bridge.uninstrument()
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_agent planner"]
    assert agent("planner") == 1


def test_bridge_alone_does_not_switch_agentstat_spans_on(provider: TracerProvider) -> None:
    """A provider whose only processor is the bridge leaves agentstat's spans off."""
    AgentstatInstrumentor().instrument(tracer_provider=provider, agents=[], tools=[])
    try:
        assert _runners._tracer is None
    finally:
        AgentstatInstrumentor().uninstrument()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    AgentstatInstrumentor().instrument(tracer_provider=provider, agents=[], tools=[])
    try:
        assert _runners._tracer is not None  # an exporting processor still does
    finally:
        AgentstatInstrumentor().uninstrument()


def test_span_inside_an_agentstat_run_of_the_same_name_is_left_to_it(
    provider: TracerProvider,
) -> None:
    """A framework span started inside a run an integration is timing, with the same
    kind and name, is not counted again; a differently named one inside it is."""
    run = start_run("agent", "helper")
    assert run is not None
    outer = emit(provider, "invoke_agent helper", gen_ai__agent__name="helper")
    with outer, emit(provider, "invoke_agent sub", gen_ai__agent__name="sub"):
        pass
    run.finish()
    assert agent("helper") == 1
    assert agent("sub") == 1


def test_spans_of_an_integrated_framework_are_left_to_its_integration(
    provider: TracerProvider,
) -> None:
    """While agentstat's smolagents integration is on, GenAI spans from a smolagents
    instrumentation (known by scope name or gen_ai.provider.name) are not counted."""
    smolagents_integration = pytest.importorskip("agentstat.integrations.smolagents")
    pytest.importorskip("smolagents", reason="smolagents not installed")
    scope = "openinference.instrumentation.smolagents"
    instrumentor = smolagents_integration.SmolagentsInstrumentor()
    instrumentor.instrument()
    try:
        with emit(provider, "invoke_agent x", scope=scope, gen_ai__agent__name="x"):
            pass
        with emit(provider, "invoke_agent x", gen_ai__agent__name="x",
                  gen_ai__provider__name="smolagents"):  # fmt: skip
            pass
        assert agent("x") == 0
    finally:
        instrumentor.uninstrument()
    with emit(provider, "invoke_agent x", scope=scope, gen_ai__agent__name="x"):
        pass
    assert agent("x") == 1


def test_uninstrument_stops_recording_and_processor_is_added_once() -> None:
    """uninstrument() disables the processor; instrumenting again reuses it."""
    tracer_provider = TracerProvider()
    bridge = GenAISpanInstrumentor()
    bridge.instrument(tracer_provider=tracer_provider)
    bridge.uninstrument()
    with emit(tracer_provider, "invoke_agent a", gen_ai__agent__name="a"):
        pass
    assert agent("a") == 0
    bridge.instrument(tracer_provider=tracer_provider)
    try:
        with emit(tracer_provider, "invoke_agent a", gen_ai__agent__name="a"):
            pass
    finally:
        bridge.uninstrument()
    processors = tracer_provider._active_span_processor._span_processors
    assert sum(isinstance(p, GenAISpanProcessor) for p in processors) == 1
    assert agent("a") == 1


def test_third_party_crewai_spans_feed_histograms_under_opentelemetry_instrument(
    tmp_path,
) -> None:
    """With agentstat's CrewAI integration switched off, OpenLLMetry's CrewAI
    instrumentor (opentelemetry-instrumentation-crewai) gives its agent spans to the
    bridge, on by default: one record per agent run, named from the role."""
    pytest.importorskip("opentelemetry.instrumentation.crewai", reason="not installed")
    disabled = "agentstat_crewai"
    found = run_app("crewai_app", tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    for role in ("Researcher", "Writer"):
        assert series(found, semconv.AGENT_DURATION, {semconv.GEN_AI_AGENT_NAME: role}) == 3
    assert series(found, semconv.WORKFLOW_DURATION, {semconv.GEN_AI_WORKFLOW_NAME: "newsroom"}) == 0
