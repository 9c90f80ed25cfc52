"""Caps: no cap changes a success, ``cancelled`` or ``gen_ai.operation.name``; a series
cap per metric in the low thousands folds new error types under their name and new
names into ``_OTHER``; long names are cut with a hash; each warning prints once."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

import pytest

import agentstat
import agentstat.testing
from agentstat import semconv
from agentstat._metrics.caps import CAPS, MAX_VALUE_LENGTH
from tests.helpers import REPO

DURATION = semconv.AGENT_DURATION
OP, NAME, ERROR = semconv.GEN_AI_OPERATION_NAME, semconv.GEN_AI_AGENT_NAME, semconv.ERROR_TYPE


@functools.cache
def _error_class(name: str) -> type[Exception]:
    return type(name, (Exception,), {})


@functools.cache
def _agent(name: str) -> Callable[[BaseException | None], None]:
    @agentstat.agent(name)
    def call(error: BaseException | None) -> None:
        if error is not None:
            raise error

    return call


def call(name: str, error: str | None = None) -> None:
    """One call of agent ``name``: a success, a cancellation ("cancelled") or a failure."""
    if error is None:
        _agent(name)(None)
        return
    exc = asyncio.CancelledError() if error == "cancelled" else _error_class(error)()
    with pytest.raises(type(exc)):
        _agent(name)(exc)


def recorded() -> dict[tuple[str, ...], float]:
    return agentstat.testing.series(DURATION)


def limits(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    for key, value in values.items():
        monkeypatch.setenv(f"AGENTSTAT_MAX_{key.upper()}", str(value))
    agentstat.testing.reset()
    _agent.cache_clear()


def test_cancelled_is_kept_when_the_error_type_cap_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once every error-type slot is taken a cancellation is still ``cancelled``, not
    ``_OTHER`` (which the rules would count as a failure)."""
    limits(monkeypatch, error_types=3)
    for index in range(5):
        call("planner", f"Error{index}")
    call("planner", "cancelled")
    call("planner")
    assert agentstat.testing.calls("agent", "planner", "cancelled") == 1
    assert agentstat.testing.calls("agent", "planner", semconv.OTHER) == 2
    assert agentstat.testing.calls("agent", "planner") == 1


def test_series_cap_folds_new_error_types_under_their_name_and_new_names_into_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the series cap a known name's new error type becomes (name, ``_OTHER``) and a
    new name becomes ``_OTHER``; the operation name is never touched. A wrapped name
    reserves its success series when it is wrapped (hidden until its first success), so
    "a" fills the cap of 4 with three error types."""
    limits(monkeypatch, series=4)
    for index in range(4):
        call("a", f"Error{index}")
    call("a", "Late")
    call("b", "Late")
    call("c", "Other")
    op = semconv.AGENT_OPERATION.operation_name
    assert recorded() == {
        (op, "a", "Error0"): 1,
        (op, "a", "Error1"): 1,
        (op, "a", "Error2"): 1,
        (op, "a", semconv.OTHER): 2,
        (op, semconv.OTHER, semconv.OTHER): 2,
    }
    call("a")
    assert recorded()[(op, "a", "")] == 1
    assert len(recorded()) == 6  # the 4 admitted, and the 2 folded series


def test_series_cap_never_changes_a_success_or_a_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the series cap successes and cancellations stay what they are: under their
    own name when it has series already, under ``_OTHER`` for a new name."""
    limits(monkeypatch, series=2)
    call("a", "Error0")
    call("a", "Error1")
    call("a")
    call("a", "cancelled")
    call("new")
    call("new", "cancelled")
    op = semconv.AGENT_OPERATION.operation_name
    got = recorded()
    assert got[(op, "a", "")] == 1
    assert got[(op, "a", "cancelled")] == 1
    assert got[(op, semconv.OTHER, "")] == 1
    assert got[(op, semconv.OTHER, "cancelled")] == 1
    assert {key[0] for key in got} == {op}


def test_210_names_by_60_error_types_stay_near_the_default_series_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe that made 10,001 series (a 41.6 MB page) stays within the default cap of
    2000 series plus one folded series per name, all with their real operation name."""
    limits(monkeypatch, names=1000, error_types=100)
    monkeypatch.delenv("AGENTSTAT_MAX_SERIES", raising=False)
    assert CAPS.limit("series") == 2000
    for index in range(210):
        for error in range(60):
            call(f"agent-{index:03d}", f"Error{error:02d}")
    got = recorded()
    assert len(got) <= 2000 + 210
    assert {key[0] for key in got} == {semconv.AGENT_OPERATION.operation_name}
    assert sum(got.values()) == 210 * 60


def test_series_cap_is_documented_in_the_readme() -> None:
    """The README's settings table names the series cap and its default."""
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if "`AGENTSTAT_MAX_SERIES`" in line)
    assert "2000" in row


def test_long_names_are_cut_with_a_hash_suffix_and_never_merge() -> None:
    """Names over 128 characters are cut to 128 with a short hash, so a 100 KB name
    costs 128 bytes and two long names with the same beginning stay apart."""
    first, second = "a" * 100_000, "a" * 100_000 + "b"
    call(first)
    call(second)
    names = sorted(key[1] for key in recorded())
    assert len(names) == 2
    assert names[0] != names[1]
    assert all(len(name) == MAX_VALUE_LENGTH for name in names)
    assert all(name.startswith("a" * 100) for name in names)
    call(first)
    assert sorted(recorded().values()) == [1, 2]


def test_a_short_name_is_kept_as_is() -> None:
    """A name of exactly 128 characters is not cut."""
    name = "x" * MAX_VALUE_LENGTH
    call(name)
    assert agentstat.testing.calls("agent", name) == 1


def test_each_cap_warning_is_printed_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full name cap, a full error-type cap, a cut name and a full series cap each log
    one warning, however often they act."""
    limits(monkeypatch, names=2, error_types=2, series=3)
    with caplog.at_level(logging.WARNING, logger="agentstat"):
        for index in range(6):
            call(f"n{index}", f"E{index}")
            call("n0", f"F{index}")
            call("L" * 200 + str(index))
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "names of" in m and "reached" in m]) == 1
    assert len([m for m in messages if "error types of" in m]) == 1
    assert len([m for m in messages if "longer than 128" in m]) == 1
    assert len([m for m in messages if "series" in m and "AGENTSTAT_MAX_SERIES" in m]) == 1
    assert len(messages) == 4, messages
