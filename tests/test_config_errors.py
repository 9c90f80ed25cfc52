"""``load_config`` never raises, whatever the files and variables hold, and reports
every problem in one line naming where it is."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstat.instrumentation.config import load_config

SETTINGS = ("AGENTSTAT_AGENTS", "AGENTSTAT_TOOLS", "AGENTSTAT_STRICT", "AGENTSTAT_MAX_NAMES")
TOML_SNIPPETS = [
    b"[[tool]]\nname = 'x'\n",
    b"tool = 5\n",
    b"tool = [1, 2]\n",
    b"[tool]\nagentstat = 'x'\n",
    b"[[tool.agentstat]]\nagents = []\n",
    b"[tool.agentstat]\nagents = 5\nstrict = 'maybe'\nnope = 1\n",
    b"[tool.agentstat]\nagents = ['a:b', 3]\n",
    b"[tool.agentstat]\nagents = ['a:b=', ':x', 'a b:c']\n",
    "[tool.agentstat]\nagents = ['a:b']\n".encode("utf-16"),
    b"\xff\xfe\x00garbage",
]
contents = st.one_of(st.sampled_from(TOML_SNIPPETS), st.binary(max_size=200))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pyproject=st.none() | contents,
    config=st.none() | contents,
    env=st.dictionaries(st.sampled_from(SETTINGS), st.text(max_size=30)),
)
def test_load_config_never_raises_and_each_problem_is_one_line(
    tmp_path: Path, pyproject: bytes | None, config: bytes | None, env: dict[str, str]
) -> None:
    """Random bytes, misshapen TOML and odd values: load_config returns, and each
    problem is a single line."""
    environ = dict(env)
    for name, data in (("pyproject.toml", pyproject), ("extra.toml", config)):
        path = tmp_path / name
        path.unlink(missing_ok=True)
        if data is not None:
            path.write_bytes(data)
    if config is not None:
        environ["AGENTSTAT_CONFIG"] = str(tmp_path / "extra.toml")
    result = load_config(environ, tmp_path)
    for error in result.errors:
        text = str(error)
        assert text and "\n" not in text and "\r" not in text


def test_toml_shape_problems_name_the_file_and_the_shape(tmp_path: Path) -> None:
    """A ``tool`` that is not a table and a non-UTF-8 file are reported, not raised."""
    (tmp_path / "pyproject.toml").write_bytes(b"[[tool]]\nname = 'x'\n")
    (tmp_path / "extra.toml").write_bytes("agents = ['a:b']\n".encode("utf-16"))
    environ = {"AGENTSTAT_CONFIG": str(tmp_path / "extra.toml")}
    errors = [str(e) for e in load_config(environ, tmp_path).errors]
    assert any("pyproject.toml: 'tool' is an array of tables, not a table" in e for e in errors)
    assert any("extra.toml is not UTF-8 text" in e for e in errors)


def test_a_bad_limit_is_a_configuration_problem(tmp_path: Path) -> None:
    """A limit that is not a positive integer is one problem line (so strict mode stops)."""
    errors = load_config({"AGENTSTAT_MAX_SERIES": "-3"}, tmp_path).errors
    assert [str(e) for e in errors] == [
        "AGENTSTAT_MAX_SERIES='-3': not a positive integer; using 2000"
    ]
