"""retry: which errors are retried, backoff and jitter, deadline, sync/async, counts."""

from __future__ import annotations

import asyncio

import pytest

from agentstat._metrics.counts import retry_counts
from agentstat.runtime.retry import Backoff, retry
from agentstat.testing import FakeClock


def failing(times: int, error: BaseException) -> tuple[list[int], object]:
    calls: list[int] = []

    def func() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "ok"

    return calls, func


def test_retries_named_errors_until_success_and_counts_each_retry() -> None:
    """Two TimeoutErrors then success: three calls, two counted retries, no give-up."""
    timeline = FakeClock(now=0.0)
    calls, func = failing(2, TimeoutError("slow"))
    wrapped = retry(
        on=TimeoutError, attempts=5, jitter=0, target="t-success",
        clock=timeline, sleep=timeline.sleep,
    )(func)  # fmt: skip
    assert wrapped() == "ok" and len(calls) == 3
    counts = retry_counts("t-success")
    assert counts.attempts == {"TimeoutError": 2} and counts.give_ups == {}


def test_other_errors_propagate_at_once_uncounted() -> None:
    """An exception type not named in on= is raised on the first failure."""
    calls, func = failing(5, KeyError("k"))
    wrapped = retry(on=(TimeoutError, ConnectionError), target="t-other", sleep=lambda s: None)(
        func
    )
    with pytest.raises(KeyError):
        wrapped()
    assert len(calls) == 1
    assert retry_counts("t-other").attempts == {} and retry_counts("t-other").give_ups == {}


def test_gives_up_after_attempts_with_the_last_exception_unchanged() -> None:
    """After `attempts` calls the original exception object propagates; one give-up counted."""
    error = ConnectionError("down")
    calls, func = failing(10, error)
    wrapped = retry(on=ConnectionError, attempts=3, target="t-give-up", sleep=lambda s: None)(func)
    with pytest.raises(ConnectionError) as raised:
        wrapped()
    assert raised.value is error and len(calls) == 3
    counts = retry_counts("t-give-up")
    assert counts.attempts == {"ConnectionError": 2} and counts.give_ups == {"ConnectionError": 1}


def test_backoff_is_exponential_and_capped_without_jitter() -> None:
    """Waits double from `initial` and stop growing at `maximum`."""
    timeline = FakeClock(now=0.0)
    _, func = failing(10, TimeoutError())
    wrapped = retry(
        on=TimeoutError, attempts=6, initial=0.5, maximum=3.0, jitter=0,
        clock=timeline, sleep=timeline.sleep, target="t-backoff",
    )(func)  # fmt: skip
    with pytest.raises(TimeoutError):
        wrapped()
    assert timeline.waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_draws_within_the_exponential_bound() -> None:
    """With jitter=1 each wait is base * (1 - random()), i.e. within (0, base]."""
    draws = iter([0.0, 0.5, 0.99])
    policy = Backoff(on=(TimeoutError,), initial=1.0, maximum=100.0, random=lambda: next(draws))
    assert [policy.wait(1), policy.wait(2), policy.wait(3)] == pytest.approx([1.0, 1.0, 0.04])


def test_deadline_stops_retrying_before_it_would_be_passed() -> None:
    """A retry whose wait would end after the deadline is not made; the give-up is counted."""
    timeline = FakeClock(now=0.0)
    calls, func = failing(100, TimeoutError())
    wrapped = retry(
        on=TimeoutError, attempts=100, deadline=5.0, initial=1.0, maximum=10.0, jitter=0,
        clock=timeline, sleep=timeline.sleep, target="t-deadline",
    )(func)  # fmt: skip
    with pytest.raises(TimeoutError):
        wrapped()
    assert timeline.waits == [1.0, 2.0]  # a third wait of 4 s would end at 7 s > 5 s
    assert len(calls) == 3 and retry_counts("t-deadline").give_ups == {"TimeoutError": 1}


def test_async_functions_are_retried_with_async_sleep() -> None:
    """async def functions are awaited per attempt, sleeping with the async sleep."""
    timeline = FakeClock(now=0.0)
    calls: list[int] = []

    @retry(on=ValueError, attempts=4, jitter=0, initial=0.1, target="t-async",
           clock=timeline, sleep=timeline.asleep)  # fmt: skip
    async def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("again")
        return len(calls)

    assert asyncio.run(flaky()) == 3
    assert timeline.waits == [0.1, pytest.approx(0.2)]
    assert retry_counts("t-async").attempts == {"ValueError": 2}


def test_default_target_is_the_qualified_function_name() -> None:
    """Without target= the counts are labelled module.qualname."""

    @retry(on=OSError, attempts=2, sleep=lambda s: None)
    def named() -> None:
        raise OSError("x")

    with pytest.raises(OSError):
        named()
    label = f"{__name__}.test_default_target_is_the_qualified_function_name.<locals>.named"
    assert retry_counts(label).give_ups == {"OSError": 1}


@pytest.mark.parametrize(
    "kwargs",
    [{"on": ()}, {"on": ValueError, "attempts": 0}, {"on": ValueError, "jitter": 2},
     {"on": "ValueError"}],
)  # fmt: skip
def test_bad_settings_are_refused(kwargs: dict) -> None:
    """No exception type, zero attempts, jitter outside [0, 1] or a non-class raise."""
    with pytest.raises((ValueError, TypeError)):
        retry(**kwargs)
