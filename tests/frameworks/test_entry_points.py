"""Each integration is found as its own opentelemetry_instrumentor entry point, and
loading it imports no framework: opentelemetry-instrument loads every entry point at
start-up, whether the framework is installed or not."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from tests.helpers import clean_env

INTEGRATIONS = {
    "agentstat_pydantic_ai": "PydanticAIInstrumentor",
    "agentstat_openai_agents": "OpenAIAgentsInstrumentor",
    "agentstat_langgraph": "LangGraphInstrumentor",
    "agentstat_langchain": "LangChainInstrumentor",
}
FRAMEWORK_MODULES = ("pydantic_ai", "agents", "langgraph", "langchain_core", "openai")

_LOAD = """
import sys
from importlib.metadata import entry_points
found = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
for name in sys.argv[1:]:
    print(name, found[name].load().__name__)
print("imported:", sorted({m.split(".")[0] for m in sys.modules} & set(%r)))
"""


def test_every_integration_is_an_entry_point_of_its_own() -> None:
    """The four switches are entry points naming their own FrameworkInstrumentor class."""
    found = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    for name, cls in INTEGRATIONS.items():
        assert found[name].endswith(f":{cls}"), found


def test_loading_the_entry_points_imports_no_framework() -> None:
    """Loading every integration's entry point (as opentelemetry-instrument does) leaves
    the frameworks unimported: each is patched only when the application imports it."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD % (FRAMEWORK_MODULES,), *INTEGRATIONS],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:-1] == [f"{name} {cls}" for name, cls in INTEGRATIONS.items()]
    assert lines[-1] == "imported: []"
