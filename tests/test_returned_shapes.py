"""What a plain call hands back, in process: the caller gets its own object back, the
span lasts until the work ends, and suppression skips it all."""

from __future__ import annotations

import asyncio
import concurrent.futures

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentstat
from agentstat.instrumentation import AgentstatInstrumentor
from agentstat.testing import calls


def test_returned_handle_is_the_same_object() -> None:
    """A future comes back unchanged (only a done-callback is added) and records when
    it completes, not when the call returns."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    @agentstat.agent("handler")
    def start() -> concurrent.futures.Future:
        return future

    assert start() is future
    assert calls("agent", "handler") == 0
    future.set_exception(KeyError("k"))
    assert calls("agent", "handler", "KeyError") == 1


def test_span_lasts_until_the_returned_coroutine_completes(meter_provider) -> None:
    """The span of a call that returned a coroutine ends when the await does, and the
    caller's context is restored at once."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider, tracer_provider=tracer_provider
    )
    try:

        async def work() -> str:
            await asyncio.sleep(0.05)
            return "done"

        @agentstat.agent("deferred")
        def start():
            return work()

        async def main() -> str:
            coroutine = start()
            assert not exporter.get_finished_spans()
            return await coroutine

        assert asyncio.run(main()) == "done"
    finally:
        AgentstatInstrumentor().uninstrument()
    (span,) = exporter.get_finished_spans()
    assert span.name == "invoke_agent deferred"
    assert (span.end_time - span.start_time) / 1e9 >= 0.05


def test_suppressed_call_returns_the_bare_coroutine() -> None:
    """Under suppress_instrumentation() the returned coroutine is not wrapped at all."""

    async def work() -> int:
        return 1

    @agentstat.agent("quiet")
    def start():
        return work()

    with suppress_instrumentation():
        coroutine = start()
    assert coroutine.__qualname__.endswith("work")
    assert asyncio.run(coroutine) == 1
    assert calls("agent", "quiet") == 0


def test_an_async_context_object_never_entered_is_recorded_when_dropped() -> None:
    """A tool returning an object that merely has ``__aenter__`` (a client or session the
    caller uses through its other methods) is recorded once, as a success, when the
    object is dropped; the caller works with it exactly as with the object itself."""
    import gc

    class Session:
        async def __aenter__(self) -> Session:
            return self

        async def __aexit__(self, *exc: object) -> bool:
            return False

        def get(self) -> str:
            return "page"

    @agentstat.tool("make_session")
    def make_session() -> Session:
        return Session()

    session = make_session()
    assert isinstance(session, Session) and session.get() == "page"
    assert calls("tool", "make_session") == 0  # may still be entered
    del session
    gc.collect()
    assert calls("tool", "make_session") == 1
