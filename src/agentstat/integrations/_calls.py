"""The one wrapped-call body the issue-11 integrations share."""

from __future__ import annotations

from typing import Any

from agentstat.integrations._base import Run


def call_in_run(run: Run | None, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    """Call ``wrapped`` as ``run`` (None: not recorded), which ends when it returns; an
    exception is recorded and re-raised unchanged. What it returns goes back untouched
    (a tool may return a generator as a value)."""
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    run.finish()
    return result


def acall_in_run(run: Run | None, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    """Call an ``async def`` ``wrapped`` as ``run``: its coroutine is timed to the end of
    its ``await`` (an exception: recorded and re-raised unchanged)."""
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        coroutine = wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    return run.finish_when_done(coroutine)
