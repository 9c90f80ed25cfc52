"""``cached``: memoize a sync or async function in a counted cache, single-flight.

Usage::

    from agentstat import cached

    @cached(ttl=60, name="search")              # or cached(answers), or @cached
    async def search(query: str) -> list[str]: ...

Keys are built from the arguments tagged with their types, so ``1``, ``1.0`` and ``True``
never share an entry and no two arguments collide through their ``str()``. Concurrent
callers with the same key (threads or tasks) wait for the one computing it; exceptions
are not cached.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, TypeVar

from agentstat.runtime.cache import MISSING, Cache
from agentstat.runtime.tiered import DEFAULT_TIERS, Tier, TieredCache

P = ParamSpec("P")
R = TypeVar("R")


class _LeaderGone(Exception):
    """The computing caller was cancelled or interrupted; a waiter should compute."""


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


def _typed(value: Any) -> Any:
    # Tag every value with its type, recursively through tuples and frozensets, so that
    # 1, 1.0 and True (equal and equally hashed in Python) never share a key.
    if isinstance(value, tuple):
        return (type(value), tuple([_typed(v) for v in value]))
    if isinstance(value, frozenset):
        return (type(value), frozenset([_typed(v) for v in value]))
    return (type(value), value)


def _unhashable_error(func: Callable[..., Any], args: tuple, kwargs: dict) -> TypeError | None:
    for where, value in [*((f"argument {i}", a) for i, a in enumerate(args)),
                         *((f"argument {k!r}", v) for k, v in kwargs.items())]:  # fmt: skip
        try:
            hash(_typed(value))
        except TypeError:
            return TypeError(
                f"cached {func.__qualname__}(): {where} is an unhashable "
                f"{type(value).__name__}; pass key=... to cached() to build a hashable key"
            )
    return None


def cached(
    cache: Cache[Any, Any] | TieredCache[Any, Any] | Callable[..., Any] | None = None,
    *,
    maxsize: int = 1024,
    ttl: float | None = None,
    name: str | None = None,
    key: Callable[..., Hashable] | None = None,
) -> Any:
    """Cache a function's results, sync or async; concurrent misses compute once.

    ``cached(cache)`` uses an existing cache (it may be shared by several functions:
    keys include the function); ``cached(maxsize=..., ttl=..., name=...)`` makes one
    named after the function by default. Keys are the arguments tagged with their types
    (``f(1)`` and ``f(True)`` are different entries); positional and keyword spellings
    of one argument are different entries too. Unhashable arguments raise
    :class:`TypeError` unless ``key(*args, **kwargs)`` returns a hashable key.
    Exceptions are passed to every caller waiting on that computation but not cached.
    Methods work; the instance is part of the key (and kept alive by the cache).
    """
    if callable(cache) and not isinstance(cache, Cache | TieredCache):
        return cached()(cache)  # bare @cached

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        store: Any = cache
        if store is None:
            store = Cache(maxsize, ttl, name=name or f"{func.__module__}.{func.__qualname__}")
        entry_ttl = None if cache is None else ttl
        token = object()  # this function's part of every key
        lock = threading.Lock()

        def make_key(args: tuple, kwargs: dict) -> Hashable:
            if key is not None:
                return (token, key(*args, **kwargs))
            typed = tuple([_typed(a) for a in args])
            if kwargs:
                return (token, typed, tuple(sorted((k, _typed(v)) for k, v in kwargs.items())))
            return (token, typed)

        def first_lookup(k: Hashable, args: tuple, kwargs: dict) -> Any:
            try:
                return store.get(k, MISSING)
            except TypeError:
                error = None if key is not None else _unhashable_error(func, args, kwargs)
                if error is None:
                    raise
                raise error from None

        if inspect.iscoroutinefunction(func):
            flights: dict[tuple[Any, Hashable], asyncio.Future[Any]] = {}

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                k = make_key(args, kwargs)
                value = first_lookup(k, args, kwargs)
                if value is not MISSING:
                    return value
                loop = asyncio.get_running_loop()
                while True:
                    with lock:
                        value = store._peek(k)
                        if value is not MISSING:
                            return value
                        future = flights.get((loop, k))
                        if future is None:
                            future = flights[(loop, k)] = loop.create_future()
                            break
                    try:
                        return await asyncio.shield(future)
                    except _LeaderGone:
                        continue
                try:
                    result = await func(*args, **kwargs)  # type: ignore[misc]
                except Exception as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning
                    raise
                except BaseException:
                    future.set_exception(_LeaderGone())
                    future.exception()
                    raise
                else:
                    store.put(k, result, entry_ttl)
                    future.set_result(result)
                    return result
                finally:
                    with lock:
                        flights.pop((loop, k), None)

            async_wrapper.cache = store  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        sync_flights: dict[Hashable, _Flight] = {}
        # A forked child has none of its parent's computing threads: a flight in progress
        # at the fork would never land there, and its waiters would wait forever.
        os.register_at_fork(after_in_child=sync_flights.clear)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = make_key(args, kwargs)
            value = first_lookup(k, args, kwargs)
            if value is not MISSING:
                return value
            while True:
                with lock:
                    value = store._peek(k)
                    if value is not MISSING:
                        return value
                    flight = sync_flights.get(k)
                    if flight is None:
                        flight = sync_flights[k] = _Flight()
                        break
                flight.done.wait()
                if isinstance(flight.error, _LeaderGone):
                    continue
                if flight.error is not None:
                    raise flight.error
                return flight.value
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                flight.error = exc
                raise
            except BaseException:
                flight.error = _LeaderGone()
                raise
            else:
                store.put(k, result, entry_ttl)
                flight.value = result
                return result
            finally:
                with lock:
                    sync_flights.pop(k, None)
                flight.done.set()

        wrapper.cache = store  # type: ignore[attr-defined]
        return wrapper

    return decorate


__all__ = ["DEFAULT_TIERS", "MISSING", "Cache", "Tier", "TieredCache", "cached"]
