"""Wrapping framework methods and putting the originals back, for the integrations.

A target is ``(module, class, attribute, wrapper)``; the wrapper is a wrapt wrapper
``(wrapped, instance, args, kwargs)``. :func:`unwrap_all` restores exactly what
:func:`wrap_all` replaced: a ``__wrapped__`` test cannot tell a wrapt proxy from a
framework method that ``functools.wraps`` decorated (``@asynccontextmanager``).
:class:`WrappingInstrumentor` is an integration made of such targets only;
:func:`call`, :func:`acall` and :func:`await_in_run` time one plain or async call as
one run; :func:`stepped_stream` times a framework's generator as one run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, ClassVar

import wrapt

from agentstat.integrations._base import FrameworkInstrumentor, Run

Target = tuple[str, str, str, Callable[..., Any]]

_originals: dict[tuple[type, str], Any] = {}


def wrap_all(targets: tuple[Target, ...]) -> None:
    """Wrap every target's ``class.attribute`` (once: a wrapped one is left as it is)."""
    for module_name, owner, attribute, wrapper in targets:
        cls = getattr(importlib.import_module(module_name), owner)
        if (cls, attribute) in _originals:
            continue
        original = cls.__dict__[attribute]
        wrapt.wrap_function_wrapper(cls, attribute, wrapper)
        _originals[(cls, attribute)] = original


def unwrap_all(targets: tuple[Target, ...]) -> None:
    """Put back what :func:`wrap_all` replaced for these targets."""
    for module_name, owner, attribute, _ in targets:
        module = importlib.import_module(module_name)
        cls = getattr(module, owner)
        original = _originals.pop((cls, attribute), None)
        if original is not None:
            setattr(cls, attribute, original)


class WrappingInstrumentor(FrameworkInstrumentor):
    """An integration that wraps framework methods: its ``targets`` are all it needs."""

    targets: ClassVar[tuple[Target, ...]] = ()

    def _patch(self, module: ModuleType) -> None:
        wrap_all(self.targets)

    def _unpatch(self) -> None:
        unwrap_all(self.targets)


def call(run: Run | None, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    """``wrapped(*args, **kwargs)``, recorded as ``run`` (None: not recorded)."""
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    run.finish()
    return result


async def acall(run: Run | None, wrapped: Any, args: tuple, kwargs: dict) -> Any:
    """``await wrapped(*args, **kwargs)``, recorded as ``run`` (None: not recorded)."""
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
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


def stepped_stream(
    chunks: Generator[Any, Any, Any],
    run: Any,
    step: Callable[[], AbstractContextManager[Any]],
    *,
    first_chunk: bool = True,
) -> Generator[Any, Any, Any]:
    """Yield what ``chunks`` yields, ``send``/``throw``/``close`` forwarded by hand (PEP
    380 semantics), as one run: ``run`` (with ``first_chunk()`` and ``finish(error)``)
    ends when the stream does, ``cancelled`` when the consumer abandons it.

    Each step of ``chunks`` (``next``, ``send``, ``throw``, ``close``) runs inside
    ``step()``, which puts the run in the context for that step only: between two
    steps the consumer's context is its own, so its own runs of the same agent count,
    while work the framework delegates inside a step (``invoke`` → ``stream``) still
    sees the run. An error the framework raises from ``close()`` (smolagents' "generator
    ignored GeneratorExit") passes on unchanged after the run is recorded as cancelled."""
    try:
        try:
            with step():
                value = next(chunks)
        except StopIteration as stop:
            result = stop.value
        else:
            if first_chunk:
                run.first_chunk()
            while True:
                try:
                    sent = yield value
                except GeneratorExit as abandoned:
                    try:
                        with step():
                            chunks.close()
                    finally:
                        run.finish(abandoned)
                    raise
                except BaseException as thrown:
                    try:
                        with step():
                            value = chunks.throw(thrown)
                    except StopIteration as stop:
                        result = stop.value
                        break
                else:
                    try:
                        with step():
                            value = next(chunks) if sent is None else chunks.send(sent)
                    except StopIteration as stop:
                        result = stop.value
                        break
    except BaseException as exc:
        run.finish(exc)  # once: an abandoned stream was finished above
        raise
    run.finish()
    return result
