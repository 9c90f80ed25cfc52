"""What the CrewAI, smolagents and LlamaIndex integrations and the GenAI span bridge add.

For each framework that is installed (``.venv-frameworks-b`` has all three; a skipped
row is printed for each one that is not), two measurements, interleaved:

- **Whole runs** with a zero-latency local model (the test suites' fakes): bare, and
  with agentstat's integration on. A run is milliseconds and its median moves by more
  than 10 µs between rounds on a loaded 2-core machine, so the difference is shown,
  not judged.
- **The hooks of one run**, exactly as the integration runs them, beside the same call
  with nothing attached: CrewAI, the listener calls one crew run causes (crew, agent and
  tool start and end; CrewAI runs them in its listener pool, off the run's thread, so
  this is CPU spent per run rather than latency added); smolagents, the ``_run_stream``
  wrapper over a 4-step stream, and one ``Tool.__call__``; LlamaIndex, the ``run``
  wrapper up to the handler's completion callback plus the six stream events of a
  one-tool run, and one ``FunctionTool.acall``. The difference is the added cost that
  the targets judge: ≤ 10 µs median and ≤ 1 % of the bare run.

The span bridge: one GenAI ``invoke_agent`` span and one unrelated span, started and
ended on an SDK tracer provider with the bridge and with no processor at all.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from benchmarks._frameworks import (
    ADDED_LIMIT_NS,
    BARE,
    HOOKS_BARE,
    HOOKS_ON,
    ON,
    PROVIDER,
    TOOL_BARE,
    TOOL_ON,
    instrumenting,
    judge,
    switched,
)
from benchmarks._harness import (
    Case,
    Mode,
    Report,
    Row,
    Runner,
    async_loop_runner,
    loop_runner,
    measure,
)

SECTION = "frameworks_b"


def _hooks(prefix: str, mode: Mode, report: Report, hooks: tuple[Runner, Runner],
           tool: tuple[Runner, Runner]) -> None:  # fmt: skip
    measure(
        SECTION,
        [
            Case(f"{prefix}: {HOOKS_BARE}", hooks[0]),
            Case(f"{prefix}: {HOOKS_ON}", hooks[1], f"{prefix}: {HOOKS_BARE}"),
            Case(f"{prefix}: {TOOL_BARE}", tool[0]),
            Case(f"{prefix}: {TOOL_ON}", tool[1], f"{prefix}: {TOOL_BARE}"),
        ],
        mode,
        report,
    )


def _whole(prefix: str, mode: Mode, report: Report, bare: Runner, on: Runner) -> None:
    measure(
        SECTION,
        [Case(f"{prefix}: {BARE}", bare), Case(f"{prefix}: {ON}", on, f"{prefix}: {BARE}")],
        mode,
        report,
    )


def _fakes(app: str) -> Any:
    """The test suite's local model and agents for ``app`` (tests/apps/<app>/fakes.py)."""
    return importlib.import_module(f"tests.apps.{app}.fakes")


# ---------------------------------------------------------------------------------- CrewAI


def _crewai(mode: Mode, report: Report) -> None:
    for variable in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_DISABLE_TRACKING"):
        os.environ.setdefault(variable, "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
    from crewai.events import crewai_event_bus

    from agentstat.integrations.crewai import CrewAIInstrumentor

    fakes = _fakes("crewai_app")
    fakes.TOOL_SLEEP = 0.0
    prefix = "CrewAI"
    crew = fakes.crew()

    def kickoff() -> None:
        crew.kickoff()
        crewai_event_bus.flush()

    instrumentor = CrewAIInstrumentor()
    _whole(
        prefix,
        mode,
        report,
        loop_runner(kickoff),
        switched(*instrumenting(instrumentor), loop_runner(kickoff)),
    )

    # The listener calls of one run, with the events CrewAI emits for it.
    events: list[tuple[type, Any]] = []

    def keep(event_type: type) -> Callable[[Any, Any], None]:
        def handler(source: Any, event: Any) -> None:
            events.append((event_type, event))

        return handler

    instrumentor.instrument(meter_provider=PROVIDER)
    try:
        handlers = dict(instrumentor._handlers)
        keepers = [(t, keep(t)) for t in handlers]
        for event_type, keeper in keepers:
            crewai_event_bus.on(event_type)(keeper)
        kickoff()
        for event_type, keeper in keepers:
            crewai_event_bus.off(event_type, keeper)
        calls = [(handlers[event_type], event) for event_type, event in events]
        nothing = [(lambda source, event: None, event) for _, event in events]

        def replay(pairs: list[tuple[Callable[[Any, Any], None], Any]]) -> Callable[[], None]:
            def once() -> None:
                for handler, event in pairs:
                    handler(None, event)

            return once

        tool_calls = [pair for pair in calls if "ToolUsage" in type(pair[1]).__name__]
        tool_nothing = [pair for pair in nothing if "ToolUsage" in type(pair[1]).__name__]
        _hooks(
            prefix,
            mode,
            report,
            (loop_runner(replay(nothing)), loop_runner(replay(calls))),
            (loop_runner(replay(tool_nothing)), loop_runner(replay(tool_calls))),
        )
    finally:
        instrumentor.uninstrument()
    report.add(
        Row(SECTION, f"{prefix}: events per run", float(len(events)), "", note="listener calls")
    )
    judge(SECTION, prefix, report)


# ------------------------------------------------------------------------------ smolagents


def _smolagents(mode: Mode, report: Report) -> None:
    import wrapt

    from agentstat.integrations import smolagents as integration

    fakes = _fakes("smolagents_app")
    fakes.TOOL_SLEEP = 0.0
    prefix = "smolagents"
    agent = fakes.agent("bench")
    instrumentor = integration.SmolagentsInstrumentor()
    run = loop_runner(lambda: agent.run("add 1 and 2"))
    _whole(prefix, mode, report, run, switched(*instrumenting(instrumentor), run))

    class Stand:
        name = "bench"

        def _run_stream(self) -> Iterator[int]:
            yield from range(4)

        def __call__(self) -> None:
            return None

    class Wrapped(Stand):
        pass

    wrapt.wrap_function_wrapper(Wrapped, "_run_stream", integration._run_stream)
    wrapt.wrap_function_wrapper(Wrapped, "__call__", integration._tool_call)
    bare, wrapped = Stand(), Wrapped()
    _hooks(
        prefix,
        mode,
        report,
        (
            loop_runner(lambda: list(bare._run_stream())),
            loop_runner(lambda: list(wrapped._run_stream())),
        ),
        (loop_runner(bare), loop_runner(wrapped)),
    )
    judge(SECTION, prefix, report)


# ------------------------------------------------------------------------------ LlamaIndex


def _llama_index(mode: Mode, report: Report) -> None:
    import wrapt

    from agentstat.integrations import llama_index as integration

    fakes = _fakes("llama_index_app")
    fakes.TOOL_SLEEP = 0.0
    prefix = "LlamaIndex"
    loop = asyncio.new_event_loop()
    agent = fakes.calculator()
    instrumentor = integration.LlamaIndexInstrumentor()
    run = async_loop_runner(loop, lambda: agent.run("add 1 and 2"))
    _whole(prefix, mode, report, run, switched(*instrumenting(instrumentor), run))

    class Handler:
        def __init__(self) -> None:
            self._result_task = loop.create_future()

    class Stand:
        name = "bench"

        def run(self) -> Handler:
            return Handler()

        def write_event_to_stream(self, event: Any) -> None:
            return None

        async def acall(self) -> None:
            return None

    class Wrapped(Stand):
        pass

    wrapt.wrap_function_wrapper(Wrapped, "run", integration._agent_run)
    Wrapped.write_event_to_stream = integration._watch_inputs(Stand.write_event_to_stream)
    wrapt.wrap_function_wrapper(Wrapped, "acall", integration._tool_acall)
    bare, wrapped = Stand(), Wrapped()

    def one_run(stand: Stand) -> Callable[[], Any]:
        async def once() -> None:
            handler = stand.run()
            for _ in range(6):  # AgentInput, AgentStream, AgentOutput, ToolCall, ...
                stand.write_event_to_stream(None)
            handler._result_task.set_result(None)
            await asyncio.sleep(0)  # the done-callback runs

        return once

    _hooks(
        prefix,
        mode,
        report,
        (async_loop_runner(loop, one_run(bare)), async_loop_runner(loop, one_run(wrapped))),
        (async_loop_runner(loop, bare.acall), async_loop_runner(loop, wrapped.acall)),
    )
    loop.close()
    judge(SECTION, prefix, report)


# ----------------------------------------------------------------------- GenAI span bridge


def _span_bridge(mode: Mode, report: Report) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from agentstat.integrations.genai_spans import GenAISpanInstrumentor

    prefix = "GenAI span bridge"
    plain, bridged = TracerProvider(), TracerProvider()
    bridge = GenAISpanInstrumentor()
    bridge.instrument(tracer_provider=bridged, meter_provider=PROVIDER)
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bench"}

    def spans(provider: TracerProvider, genai: bool) -> Runner:
        tracer = provider.get_tracer("bench")
        name, attrs = ("invoke_agent bench", attributes) if genai else ("GET /", None)
        return loop_runner(lambda: tracer.start_span(name, attributes=attrs).end())

    try:
        measure(
            SECTION,
            [
                Case(f"{prefix}: GenAI span, no processor", spans(plain, True)),
                Case(
                    f"{prefix}: GenAI span, bridge",
                    spans(bridged, True),
                    f"{prefix}: GenAI span, no processor",
                ),
                Case(f"{prefix}: other span, no processor", spans(plain, False)),
                Case(
                    f"{prefix}: other span, bridge",
                    spans(bridged, False),
                    f"{prefix}: other span, no processor",
                ),
            ],
            mode,
            report,
        )
    finally:
        bridge.uninstrument()
    genai = (
        report.find(SECTION, f"{prefix}: GenAI span, bridge").value
        - report.find(SECTION, f"{prefix}: GenAI span, no processor").value
    )
    other = (
        report.find(SECTION, f"{prefix}: other span, bridge").value
        - report.find(SECTION, f"{prefix}: other span, no processor").value
    )
    report.add(Row(SECTION, f"{prefix}: added per GenAI span", genai, "ns/op"))
    report.add(Row(SECTION, f"{prefix}: added per other span", other, "ns/op"))
    report.target(
        SECTION,
        f"{prefix}: added cost per span",
        f"{genai / 1e3:.2f} µs per GenAI span, {other / 1e3:.2f} µs per other span",
        "≤ 10 µs",
        genai <= ADDED_LIMIT_NS,
    )


FRAMEWORKS: tuple[tuple[str, str, Callable[[Mode, Report], None]], ...] = (
    ("CrewAI", "crewai", _crewai),
    ("smolagents", "smolagents", _smolagents),
    ("LlamaIndex", "llama_index.core", _llama_index),
)


def _base(mode: Mode, report: Report) -> None:
    """What every hook above shares: opening and finishing one run in the integration
    base (agentstat.integrations.start_run / Run.finish), beside a bare perf_counter."""
    from agentstat.integrations import start_run

    def one_run() -> None:
        run = start_run("tool", "bench", key="bench", tool_type="function")
        if run is not None:
            run.finish()

    measure(
        SECTION,
        [
            Case(
                "integration base: perf_counter() twice",
                loop_runner(lambda: perf_counter() - perf_counter()),
            ),
            Case(
                "integration base: start_run + finish",
                loop_runner(one_run),
                "integration base: perf_counter() twice",
            ),
        ],
        mode,
        report,
    )


def run(mode: Mode, report: Report) -> None:
    """Time each installed framework bare and with agentstat, and the span bridge."""
    _base(mode, report)
    _span_bridge(mode, report)
    for label, module, bench in FRAMEWORKS:
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            report.add(
                Row(SECTION, f"{label}: skipped", 0.0, "", note=f"{module} is not installed")
            )
            continue
        bench(mode, report)
