"""Reading targets from the environment and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentstat.errors import ConfigError
from agentstat.instrumentation.config import Target, load_config, parse_entries, parse_entry


def test_entry_with_name_and_default_name() -> None:
    """``module:qualname=name`` sets the name; without ``=`` the qualname is the name."""
    assert parse_entry("agent", " myapp.agents:Researcher.run = researcher ") == Target(
        "agent",
        "myapp.agents",
        "Researcher.run",
        "researcher",
        "myapp.agents:Researcher.run = researcher",
    )
    assert parse_entry("tool", "myapp.tools:search").name == "search"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("myapp.agents.plan", "missing ':'"),
        ("my-app:plan", "not a module path"),
        ("myapp:plan()", "not a qualified name"),
        ("myapp:plan=", "empty name"),
    ],
)
def test_malformed_entries_are_refused_with_the_reason(entry: str, reason: str) -> None:
    """Each malformed entry gets a ConfigError naming the entry and what is wrong."""
    with pytest.raises(ConfigError, match=reason) as info:
        parse_entry("agent", entry)
    assert repr(entry) in str(info.value)


def test_one_bad_entry_does_not_drop_the_others() -> None:
    """A list with a bad entry still yields every good one, and one error for the bad."""
    targets, errors = parse_entries("agent", "a:b, broken ,c.d:E.f=g,")
    assert [t.path for t in targets] == ["a:b", "c.d:E.f"]
    assert len(errors) == 1 and "'broken'" in str(errors[0])


def test_environment_overrides_pyproject_key_by_key(tmp_path: Path) -> None:
    """pyproject's [tool.agentstat] is read, and an env variable replaces only its own key."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.agentstat]\nagents = ["app:plan"]\ntools = "app:search=web"\nstrict = true\n'
    )
    config = load_config({"AGENTSTAT_AGENTS": "app:other"}, cwd=tmp_path)
    assert [t.path for t in config.of_kind("agent")] == ["app:other"]
    assert [(t.path, t.name) for t in config.of_kind("tool")] == [("app:search", "web")]
    assert config.strict is True
    assert config.errors == ()


def test_agentstat_config_file_with_top_level_keys(tmp_path: Path) -> None:
    """AGENTSTAT_CONFIG may name a TOML file whose keys sit at top level."""
    path = tmp_path / "agentstat.toml"
    path.write_text('caches = ["app.cache:LRUCache"]\nbalancers = ["app.lb:LoadBalancer=lb"]\n')
    config = load_config({"AGENTSTAT_CONFIG": str(path)}, cwd=tmp_path)
    assert [t.kind for t in config.targets] == ["cache", "balancer"]


def test_unreadable_or_invalid_config_is_reported_not_raised(tmp_path: Path) -> None:
    """A missing file, invalid TOML, an unknown key or a bad boolean become errors."""
    bad = tmp_path / "bad.toml"
    bad.write_text("agents = [")
    assert "not valid TOML" in str(load_config({"AGENTSTAT_CONFIG": str(bad)}, tmp_path).errors[0])
    missing = load_config({"AGENTSTAT_CONFIG": str(tmp_path / "nope.toml")}, tmp_path)
    assert "cannot read config file" in str(missing.errors[0])
    (tmp_path / "pyproject.toml").write_text("[tool.agentstat]\nagnets = []\n")
    assert "unknown key 'agnets'" in str(load_config({}, tmp_path).errors[0])
    assert "not a boolean" in str(load_config({"AGENTSTAT_STRICT": "maybe"}, tmp_path).errors[-1])
