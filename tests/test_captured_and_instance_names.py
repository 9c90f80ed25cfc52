"""Dotted entries: names read from the instance (``=@attribute``), and the warning for
a function something else captured before agentstat wrapped it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentstat.errors import ConfigError
from agentstat.instrumentation import AgentstatInstrumentor
from agentstat.instrumentation.config import parse_entry
from agentstat.testing import calls

APP = Path(__file__).parent / "apps" / "captured"


@pytest.fixture
def tools(meter_provider) -> Iterator:
    sys.path.insert(0, str(APP))
    try:
        import captured_tools

        yield captured_tools
    finally:
        instrumentor = AgentstatInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        sys.path.remove(str(APP))


def test_entry_with_at_attribute_parses_to_a_name_read_from_the_instance() -> None:
    """`module:Class.method=@attr` keeps the qualname as fallback and the attribute apart."""
    target = parse_entry("agent", "app:Agent.run=@config.name")
    assert (target.name_from, target.name) == ("config.name", "Agent.run")
    assert parse_entry("agent", "app:Agent.run=planner").name_from is None
    with pytest.raises(ConfigError, match="not an attribute name"):
        parse_entry("agent", "app:Agent.run=@1bad")


def test_at_attribute_on_a_module_function_is_refused(tools, meter_provider, caplog) -> None:
    """A module-level function has no instance to read a name from: one clear line."""
    with caplog.at_level(logging.ERROR, logger="agentstat"):
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=["captured_tools:free=@name"]
        )
    assert "=@name reads the instance, but captured_tools:free has none" in caplog.text
    tools.free(1)
    assert calls("agent", "free") == 0


def test_names_from_instances_are_capped(tools, meter_provider, monkeypatch) -> None:
    """Instance names share the per-metric cap: past it they become _OTHER."""
    monkeypatch.setenv("AGENTSTAT_MAX_NAMES", "2")
    import agentstat.testing

    agentstat.testing.reset()
    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider, agents=["captured_tools:Agent.run=@name"]
    )
    for name in ("a", "b", "c", "d", "a"):
        tools.Agent(name).run()
    assert (calls("agent", "a"), calls("agent", "b"), calls("agent", "_OTHER")) == (2, 1, 2)


@pytest.mark.parametrize(
    ("entry", "holder"),
    [
        ("captured_tools:in_registry", "a captured_tools.Registry object"),
        ("captured_tools:in_closure", "function captured_tools._make_caller.<locals>.call"),
    ],
)
def test_function_captured_before_wrapping_is_reported_once(
    tools, meter_provider, caplog, entry: str, holder: str
) -> None:
    """A function a registry object or a closure already holds: one warning naming the
    holder and saying those calls are not recorded."""
    with caplog.at_level(logging.WARNING, logger="agentstat"):
        AgentstatInstrumentor().instrument(meter_provider=meter_provider, tools=[entry])
    lines = [r.getMessage() for r in caplog.records if entry in r.getMessage()]
    assert len(lines) == 1
    assert f"captured before agentstat wrapped it, by {holder}" in lines[0]
    assert "not recorded" in lines[0]


def test_function_imported_elsewhere_first_is_reported(tools, meter_provider, caplog) -> None:
    """`from module import f` done before instrumenting keeps the original: reported."""
    import early_importer  # noqa: F401 -- did `from captured_tools import free`

    with caplog.at_level(logging.WARNING, logger="agentstat"):
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, tools=["captured_tools:free"]
        )
    assert "by module 'early_importer'" in caplog.text


def test_uncaptured_function_gives_no_warning(tools, meter_provider, caplog) -> None:
    """Nothing else holds the function: no warning, and the call is recorded."""
    with caplog.at_level(logging.WARNING, logger="agentstat"):
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=["captured_tools:Agent.run"]
        )
    tools.Agent("x").run()
    assert "captured" not in caplog.text
    assert calls("agent", "Agent.run") == 1


def test_main_module_entry_is_refused_with_the_reason(meter_provider, caplog) -> None:
    """`__main__:fn` is refused in one line saying why it cannot work and what to do."""
    with caplog.at_level(logging.ERROR, logger="agentstat"):
        AgentstatInstrumentor().instrument(meter_provider=meter_provider, agents=["__main__:run"])
    assert "__main__ targets cannot work" in caplog.text
    assert "put the function in a module" in caplog.text


def test_instance_refusing_attributes_is_reported_with_the_class_path(
    tools, meter_provider, caplog
) -> None:
    """An object that refuses new attributes (a pydantic model) gets one line pointing to
    `Class.method=@name`, not a traceback; the app keeps running."""
    with caplog.at_level(logging.ERROR, logger="agentstat"):
        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider, agents=["captured_tools:model.run"]
        )
    assert "cannot replace 'run' on this Model object" in caplog.text
    assert "captured_tools:Model.run=@name" in caplog.text
    assert tools.model.run() == "ran"


@pytest.mark.parametrize(
    ("holder", "integration"),
    [
        ("pydantic_ai", "agentstat_pydantic_ai"),
        ("agents", "agentstat_openai_agents"),
        ("langchain_core", "agentstat_langchain"),
        ("langgraph", "agentstat_langgraph"),
        ("llama_index", "agentstat_llama_index"),
        ("crewai", "agentstat_crewai"),
        ("smolagents", "agentstat_smolagents"),
        ("json", None),
    ],
)
def test_a_capturing_framework_is_matched_to_its_integration(
    holder: str, integration: str | None
) -> None:
    """The captured-function warning names the integration of the framework that holds
    the function, by the framework's import name (``agents``, ``langgraph``)."""
    from agentstat.instrumentation.captured import _integration_for

    assert _integration_for(holder) == integration
