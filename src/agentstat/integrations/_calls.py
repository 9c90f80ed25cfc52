"""The one wrapped-call body the issue-11 integrations share."""

from __future__ import annotations

from collections.abc import Callable
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


async def await_in_run(start: Callable[[], Run | None], coroutine: Any) -> Any:
    """Await ``coroutine`` (made by the caller, so its arguments bound at call time, as
    unwrapped) as the run ``start()`` opens at the first ``await``: a coroutine never
    awaited opens nothing. An exception is recorded and re-raised unchanged."""
    run = start()
    if run is None:
        return await coroutine
    try:
        result = await coroutine
    except BaseException as exc:
        run.finish(exc)
        raise
    run.finish()
    return result
