"""What the framework integrations add to a run of pydantic-ai, openai-agents and LangGraph.

For each framework that is installed (``.venv-frameworks-a`` has all three; the section
prints a skipped row for each one that is not), two measurements, interleaved:

- **Whole runs** with the framework's own zero-latency test model: the bare framework,
  the same with agentstat's integration on, and with the framework's own
  instrumentation on instead (pydantic-ai ``InstrumentationSettings`` with an SDK tracer
  and meter provider; openai-agents: its tracing layer, against the same run with
  ``tracing_disabled=True``; LangGraph, which has none: a LangChain callback handler
  recording an OTel histogram, what callback-based OTel bridges do). A run is 2–5 ms
  and on a loaded 2-core machine its median moves by more than the 10 µs target
  between rounds, so the difference of two whole-run medians cannot resolve the
  integration's cost; it is shown, not judged.
- **The hooks of one run**, exactly as the integration runs them, on stand-ins with the
  same call shape and no work of their own: pydantic-ai's ``Agent.iter`` proxy (enter,
  exit, start and finish of the run) around an empty async context manager; LangGraph's
  ``stream`` wrapper under an ``invoke`` that iterates it; openai-agents: the exact
  processor callbacks of one recorded real run replayed into agentstat's processor,
  beside the same replay into a processor that does nothing. The difference is the
  added cost per run that the targets judge: ≤ 10 µs median and ≤ 1 % of the bare run.
  A tool call adds one more hook (its own row). The first two rows time what every hook
  shares, opening and finishing one run in the integration base.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Callable
from time import perf_counter
from typing import Any

from benchmarks._frameworks import (
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

SECTION = "frameworks"

OWN = "run, framework's own instrumentation"


def _nothing() -> None:
    return None


def _cases(prefix: str, runs: dict[str, Runner], own_label: str) -> list[Case]:
    return [
        Case(f"{prefix}: {BARE}", runs[BARE]),
        Case(f"{prefix}: {ON}", runs[ON], f"{prefix}: {BARE}"),
        Case(f"{prefix}: {OWN} ({own_label})", runs[OWN], f"{prefix}: {BARE}"),
    ]


def _pydantic_ai(mode: Mode, report: Report) -> None:
    import wrapt
    from opentelemetry.sdk.trace import TracerProvider
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.models.instrumented import InstrumentationSettings

    from agentstat.integrations import pydantic_ai as integration

    prefix = "pydantic-ai"
    loop = asyncio.new_event_loop()
    agent = Agent(FunctionModel(lambda m, i: ModelResponse(parts=[TextPart("ok")])), name="b")
    own = InstrumentationSettings(tracer_provider=TracerProvider(), meter_provider=PROVIDER)
    on, off = instrumenting(integration.PydanticAIInstrumentor())
    run = async_loop_runner(loop, lambda: agent.run("hi"))

    def own_on() -> None:
        agent.instrument = own

    def own_off() -> None:
        agent.instrument = None

    runs = {BARE: run, ON: switched(on, off, run), OWN: switched(own_on, own_off, run)}
    measure(SECTION, _cases(prefix, runs, "InstrumentationSettings, SDK providers"), mode, report)

    class Stand:
        name = "bench"

        @contextlib.asynccontextmanager
        async def iter(self) -> Any:
            yield None

        async def call_tool(self, name: str, args: Any, ctx: Any, tool: Any) -> None:
            return None

    class Wrapped(Stand):
        pass

    wrapt.wrap_function_wrapper(Wrapped, "iter", integration._iter)
    wrapt.wrap_function_wrapper(Wrapped, "call_tool", integration._call_tool)
    bare, wrapped = Stand(), Wrapped()

    async def one_run(stand: Stand) -> None:
        async with stand.iter():
            pass

    measure(
        SECTION,
        [
            Case(f"{prefix}: {HOOKS_BARE}", async_loop_runner(loop, lambda: one_run(bare))),
            Case(
                f"{prefix}: {HOOKS_ON}",
                async_loop_runner(loop, lambda: one_run(wrapped)),
                f"{prefix}: {HOOKS_BARE}",
            ),
            Case(
                f"{prefix}: {TOOL_BARE}",
                async_loop_runner(loop, lambda: bare.call_tool("t", None, None, None)),
            ),
            Case(
                f"{prefix}: {TOOL_ON}",
                async_loop_runner(loop, lambda: wrapped.call_tool("t", None, None, None)),
                f"{prefix}: {TOOL_BARE}",
            ),
        ],
        mode,
        report,
    )
    loop.close()
    judge(SECTION, prefix, report)


# --------------------------------------------------------------------------- openai-agents


def _openai_agents(mode: Mode, report: Report) -> None:
    from agents import Agent, RunConfig, Runner, function_tool, set_trace_processors
    from agents.models.interface import Model
    from agents.testing import ScriptedModel, assistant_message
    from agents.tracing import add_trace_processor

    from agentstat.integrations import openai_agents as integration

    prefix = "openai-agents"
    set_trace_processors([])  # no export to the vendor's service
    loop = asyncio.new_event_loop()

    class Forever(ScriptedModel):
        """A ScriptedModel that never runs out: the same answer for every call."""

        async def get_response(self, *args: Any, **kwargs: Any) -> Any:
            self.enqueue([assistant_message("ok")])
            return await super().get_response(*args, **kwargs)

    assert issubclass(Forever, Model)
    agent = Agent(name="b", model=Forever([]))
    traced, untraced = RunConfig(), RunConfig(tracing_disabled=True)
    on, off = instrumenting(integration.OpenAIAgentsInstrumentor())
    run = async_loop_runner(loop, lambda: Runner.run(agent, "hi", run_config=traced))
    runs = {
        BARE: run,
        ON: switched(on, off, run),
        OWN: async_loop_runner(loop, lambda: Runner.run(agent, "hi", run_config=untraced)),
    }
    cases = _cases(prefix, runs, "its tracing layer: this row has it OFF")
    measure(SECTION, cases, mode, report)

    # Record the processor callbacks of one real run (with a tool call), then replay them.
    calls: list[tuple[str, Any]] = []

    class Recorder:
        def __getattr__(self, method: str) -> Callable[[Any], None]:
            return lambda obj=None: calls.append((method, obj))

    add_trace_processor(Recorder())  # type: ignore[arg-type]

    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return q

    from agents.testing import function_call

    tool_agent = Agent(
        name="t",
        model=ScriptedModel(
            [[function_call("lookup", {"q": "x"}, call_id="c")], [assistant_message("ok")]]
        ),
        tools=[lookup],
    )
    loop.run_until_complete(Runner.run(tool_agent, "hi"))
    set_trace_processors([])
    hooks = [
        (m, o)
        for m, o in calls
        if m in ("on_trace_start", "on_trace_end", "on_span_start", "on_span_end")
    ]
    tool_spans = {
        id(o) for m, o in hooks if m == "on_span_start" and o.span_data.type == "function"
    }
    run_hooks = [(m, o) for m, o in hooks if id(o) not in tool_spans]
    tool_hooks = [(m, o) for m, o in hooks if id(o) in tool_spans]

    class Idle:
        def on_trace_start(self, obj: Any) -> None: ...
        def on_trace_end(self, obj: Any) -> None: ...
        def on_span_start(self, obj: Any) -> None: ...
        def on_span_end(self, obj: Any) -> None: ...

    def replay(processor: Any, sequence: list[tuple[str, Any]]) -> Runner:
        bound = [(getattr(processor, m), o) for m, o in sequence]

        def step() -> None:
            for method, obj in bound:
                method(obj)

        return loop_runner(step)

    processor = integration.PROCESSOR
    enabled = processor.enabled
    processor.enabled = True
    try:
        measure(
            SECTION,
            [
                Case(f"{prefix}: {HOOKS_BARE}", replay(Idle(), run_hooks)),
                Case(
                    f"{prefix}: {HOOKS_ON}", replay(processor, run_hooks), f"{prefix}: {HOOKS_BARE}"
                ),
                Case(f"{prefix}: {TOOL_BARE}", replay(Idle(), tool_hooks)),
                Case(
                    f"{prefix}: {TOOL_ON}", replay(processor, tool_hooks), f"{prefix}: {TOOL_BARE}"
                ),
            ],
            mode,
            report,
        )
    finally:
        processor.enabled = enabled
    loop.close()
    judge(SECTION, prefix, report)
    report.find(SECTION, f"{prefix}: {HOOKS_ON}").note = f"{len(run_hooks)} callbacks"


# ------------------------------------------------------------------------------- LangGraph


def _langgraph(mode: Mode, report: Report) -> None:
    import warnings
    from contextvars import ContextVar

    import wrapt
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tracers.context import register_configure_hook

    from agentstat.integrations import langchain as integration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    class Instant(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "instant"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Instant:
            return self

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Any:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok"))])

    prefix = "LangGraph"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(Instant(), [], name="b")
    question = {"messages": [HumanMessage("hi")]}
    histogram = PROVIDER.get_meter("bench").create_histogram("bench.chain.duration", unit="s")

    class Bridge(BaseCallbackHandler):
        """Times every chain (graph, node) into an OTel histogram."""

        def __init__(self) -> None:
            self.started: dict[Any, float] = {}

        def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, **kw: Any) -> None:
            self.started[run_id] = perf_counter()

        def on_chain_end(self, outputs: Any, *, run_id: Any, **kw: Any) -> None:
            start = self.started.pop(run_id, None)
            if start is not None:
                histogram.record(perf_counter() - start, {"name": kw.get("name") or "chain"})

    bridge_var: ContextVar[Any] = ContextVar("agentstat_bench_bridge", default=None)
    register_configure_hook(bridge_var, True)
    tokens: list[Any] = []

    def bridge_on() -> None:
        tokens.append(bridge_var.set(Bridge()))

    def bridge_off() -> None:
        bridge_var.reset(tokens.pop())

    on, off = instrumenting(
        integration.LangGraphInstrumentor(), integration.LangChainInstrumentor()
    )
    run = loop_runner(lambda: graph.invoke(question))
    runs = {BARE: run, ON: switched(on, off, run), OWN: switched(bridge_on, bridge_off, run)}
    measure(SECTION, _cases(prefix, runs, "a callback handler recording OTel"), mode, report)

    class Stand:
        name = "bench"

        def invoke(self, value: Any) -> Any:
            for chunk in self.stream(value):
                last = chunk
            return last

        def stream(self, value: Any) -> Any:
            yield value

        def run(self, value: Any) -> Any:
            return value

    class Wrapped(Stand):
        pass

    wrapt.wrap_function_wrapper(Wrapped, "stream", integration._stream)
    integration._DELEGATING.add(Stand.invoke.__code__)  # as Pregel.invoke is
    wrapt.wrap_function_wrapper(Wrapped, "run", integration._run_tool)
    bare, wrapped = Stand(), Wrapped()
    measure(
        SECTION,
        [
            Case(f"{prefix}: {HOOKS_BARE}", loop_runner(lambda: bare.invoke(1))),
            Case(
                f"{prefix}: {HOOKS_ON}",
                loop_runner(lambda: wrapped.invoke(1)),
                f"{prefix}: {HOOKS_BARE}",
            ),
            Case(f"{prefix}: {TOOL_BARE}", loop_runner(lambda: bare.run(1))),
            Case(
                f"{prefix}: {TOOL_ON}",
                loop_runner(lambda: wrapped.run(1)),
                f"{prefix}: {TOOL_BARE}",
            ),
        ],
        mode,
        report,
    )
    judge(SECTION, prefix, report)


FRAMEWORKS: tuple[tuple[str, str, Callable[[Mode, Report], None]], ...] = (
    ("pydantic-ai", "pydantic_ai", _pydantic_ai),
    ("openai-agents", "agents", _openai_agents),
    ("LangGraph", "langgraph", _langgraph),
)


def _base(mode: Mode, report: Report) -> None:
    """The integration base's share of every hook: open and finish one run."""
    from agentstat.integrations._base import start_run

    def agent_run() -> None:
        run = start_run("agent", "bench", key=_base)
        if run is not None:
            run.finish()

    def tool_run() -> None:
        run = start_run("tool", "bench", agent_name="bench", tool_type="function")
        if run is not None:
            run.finish()

    measure(
        SECTION,
        [
            Case("base: start_run + Run.finish, an agent run", loop_runner(agent_run)),
            Case("base: start_run + Run.finish, a tool run", loop_runner(tool_run)),
        ],
        mode,
        report,
    )


def run(mode: Mode, report: Report) -> None:
    """Time each installed framework bare, with agentstat, with its own instrumentation."""
    _base(mode, report)
    for label, module, bench in FRAMEWORKS:
        if importlib.util.find_spec(module) is None:
            report.add(
                Row(SECTION, f"{label}: skipped", 0.0, "", note=f"{module} is not installed")
            )
            continue
        bench(mode, report)
