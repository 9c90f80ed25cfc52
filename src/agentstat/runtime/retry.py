"""Retries with exponential backoff and jitter, for sync and async callables, counted.

Usage::

    from agentstat import retry

    @retry(on=(TimeoutError, ConnectionError), attempts=5, deadline=30.0)
    async def call_model(prompt: str) -> str: ...

    @retry(on=RateLimited, initial=0.5, maximum=10.0, target="search-api")
    def search(query: str) -> list[str]: ...

Only the exception types named in ``on`` are retried; anything else propagates at once.
When attempts or the deadline run out, the last exception propagates unchanged. The wait
before retry *n* (1-based) is ``min(maximum, initial * multiplier ** (n - 1))``, shortened
by a random fraction up to ``jitter`` (``jitter=1``: "full jitter", uniform in (0, wait];
``0``: no randomness). A retry whose wait would end past the deadline is not made.

Each retry counts one ``agentstat.retry.attempts`` and each exhausted call one
``agentstat.retry.give_ups``, labelled with ``target`` (default: the function's qualified
name) and ``error.type`` (the exception's class name), both capped.

Why not tenacity or stamina: tenacity's generic strategy objects cost several µs per
call and its hooks report "attempt number" and "outcome" but not our give-up event as
such; stamina is a good, small library, but its instrumentation hooks fire on retries
only, it would become a hard runtime dependency for ~100 lines of logic, and its test
switch is global. Writing it lets the counts live on the same in-process counters as the
rest of agentstat and keeps ``clock``/``sleep`` injectable for tests.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from agentstat._metrics.counts import retry_counts

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Backoff:
    """The retry policy; :func:`retry` builds one from its arguments."""

    on: tuple[type[BaseException], ...]
    attempts: int = 3
    deadline: float | None = None
    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0
    jitter: float = 1.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if not self.on:
            raise ValueError("retry(on=...) must name at least one exception type")
        for kind in self.on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise TypeError(f"retry(on=...) takes exception classes, got {kind!r}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1:
            raise ValueError("initial and maximum must be >= 0 and multiplier >= 1")

    def wait(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        base = min(self.maximum, self.initial * self.multiplier ** (retry_number - 1))
        return base * (1.0 - self.jitter * self.random())


def retry(
    *,
    on: type[BaseException] | tuple[type[BaseException], ...],
    attempts: int = 3,
    deadline: float | None = None,
    initial: float = 0.1,
    maximum: float = 5.0,
    multiplier: float = 2.0,
    jitter: float = 1.0,
    target: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a sync or async function on the exceptions ``on`` (see the module docs).

    ``attempts`` counts the first call; ``deadline`` is seconds from the first call.
    ``clock`` and ``sleep`` (``time.sleep`` / ``asyncio.sleep`` by default) are for tests.
    """
    policy = Backoff(
        on=on if isinstance(on, tuple) else (on,),
        attempts=attempts,
        deadline=deadline,
        initial=initial,
        maximum=maximum,
        multiplier=multiplier,
        jitter=jitter,
    )

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        counts = retry_counts(target or f"{func.__module__}.{func.__qualname__}")

        def next_wait(exc: BaseException, number: int, started: float) -> float | None:
            """Seconds to wait before retry ``number``, or None to give up."""
            error_type = type(exc).__name__
            wait = policy.wait(number)
            if number >= policy.attempts or (
                policy.deadline is not None and clock() + wait - started > policy.deadline
            ):
                counts.give_up(error_type)
                return None
            counts.attempt(error_type)
            return wait

        if inspect.iscoroutinefunction(func):
            async_sleep: Callable[[float], Awaitable[Any]] = sleep or asyncio.sleep

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = clock()
                number = 1
                while True:
                    try:
                        return await func(*args, **kwargs)  # type: ignore[misc]
                    except policy.on as exc:
                        wait = next_wait(exc, number, started)
                        if wait is None:
                            raise
                    await async_sleep(wait)
                    number += 1

            return async_wrapper  # type: ignore[return-value]

        sync_sleep: Callable[[float], Any] = sleep or time.sleep

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            number = 1
            while True:
                try:
                    return func(*args, **kwargs)
                except policy.on as exc:
                    wait = next_wait(exc, number, started)
                    if wait is None:
                        raise
                sync_sleep(wait)
                number += 1

        return wrapper

    return decorate


__all__ = ["Backoff", "retry"]
