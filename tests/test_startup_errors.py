"""Start-up problems under the real opentelemetry-instrument: each is one line on
stderr naming the setting or entry, the value and the reason, the other targets are
still wrapped, and ``AGENTSTAT_STRICT=1`` stops start-up with exit code 2 before any
user code runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, clean_env, copy_app

WRAPPED = "wrapped"

# name: (files to write, extra environment, a fragment of the one expected line)
CASES: dict[str, tuple[dict[str, bytes], dict[str, str], str]] = {
    "pyproject_array_of_tool_tables": (
        {"pyproject.toml": b"[[tool]]\nname = 'x'\n"},
        {},
        "'tool' is an array of tables, not a table",
    ),
    "pyproject_tool_is_a_number": (
        {"pyproject.toml": b"tool = 5\n"},
        {},
        "'tool' is int 5, not a table",
    ),
    "utf16_config_file": (
        {"agentstat.toml": "[tool.agentstat]\nstrict = false\n".encode("utf-16")},
        {"AGENTSTAT_CONFIG": "agentstat.toml"},
        "config file agentstat.toml is not UTF-8 text",
    ),
    "missing_submodule_of_an_existing_package": (
        {},
        {"AGENTSTAT_AGENTS": "startup_agents:plan,json.nosuch:plan"},
        "agent entry 'json.nosuch:plan': package 'json' has no module 'nosuch'",
    ),
    "same_target_under_another_name": (
        {},
        {"AGENTSTAT_AGENTS": "startup_agents:plan=a,startup_agents:plan=b"},
        "entry 'startup_agents:plan=b': startup_agents:plan is already listed as agent 'a'",
    ),
    "bad_duration_buckets": (
        {},
        {"AGENTSTAT_DURATION_BUCKETS": "3,1"},
        "AGENTSTAT_DURATION_BUCKETS: bounds must increase, got '3,1'",
    ),
    "bad_max_names": (
        {},
        {"AGENTSTAT_MAX_NAMES": "lots"},
        "AGENTSTAT_MAX_NAMES='lots': not a positive integer; using 200",
    ),
}


def run_app(
    tmp_path: Path, files: dict[str, bytes], strict: bool, **env: str
) -> subprocess.CompletedProcess[str]:
    app = copy_app("startup", tmp_path)
    for name, data in files.items():
        (app / name).write_bytes(data)
    settings = {
        "OTEL_METRICS_EXPORTER": "none",
        "AGENTSTAT_AGENTS": "startup_agents:plan",
        "AGENTSTAT_TOOLS": "startup_agents:search",
    }
    environment = clean_env(**{**settings, **env})
    if strict:
        environment["AGENTSTAT_STRICT"] = "1"
    return subprocess.run(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "app.py"],
        cwd=app,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_problem_is_one_line_and_the_other_targets_are_wrapped(tmp_path: Path, case: str) -> None:
    """Without strict mode the app runs, stderr is exactly the one line, and the
    well-formed targets are wrapped."""
    files, env, fragment = CASES[case]
    done = run_app(tmp_path, files, strict=False, **env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("agentstat: ") and fragment in lines[0]
    wrapped = json.loads(done.stdout)
    assert wrapped == {"plan": WRAPPED, "search": WRAPPED}


@pytest.mark.parametrize("case", list(CASES))
def test_strict_mode_exits_2_with_the_one_line_before_user_code(tmp_path: Path, case: str) -> None:
    """With AGENTSTAT_STRICT=1 the same problem stops start-up: exit code 2, that one
    line on stderr, and the app never ran."""
    files, env, fragment = CASES[case]
    done = run_app(tmp_path, files, strict=True, **env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0] and lines[0].endswith("(AGENTSTAT_STRICT is set)")
    assert done.stdout == ""


def test_object_refusing_the_wrapper_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A target on an object that refuses new attributes (a pydantic model instance) is
    reported in one line that says what to instrument instead; the rest is wrapped."""
    done = run_app(
        tmp_path, {}, strict=False, AGENTSTAT_AGENTS="startup_agents:plan,startup_agents:agent.run"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert (
        "agent entry 'startup_agents:agent.run': cannot replace 'run' on this Model object"
        in lines[0]
    )
    assert "ValueError: 1 validation error for Model" in lines[0]
    assert "startup_agents:Model.run=@name" in lines[0]
    assert json.loads(done.stdout) == {"plan": WRAPPED, "search": WRAPPED}


def test_object_refusing_the_wrapper_raises_target_error_at_import_when_strict(
    tmp_path: Path,
) -> None:
    """In strict mode the same target, in a module imported after start-up, raises
    agentstat.TargetError from that import, as documented."""
    done = run_app(
        tmp_path, {}, strict=True, AGENTSTAT_AGENTS="startup_agents:plan,startup_agents:agent.run"
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("agentstat.errors.TargetError: agentstat: cannot instrument agent entry")
    assert done.stdout == ""
