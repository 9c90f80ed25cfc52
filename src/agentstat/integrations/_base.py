"""The base every framework integration builds on: found, switched, version-checked,
and kept from counting a run twice.

One framework, one module ``agentstat/integrations/<framework>.py``, one
:class:`FrameworkInstrumentor` subclass and one ``opentelemetry_instrumentor`` entry
point ``agentstat_<framework>``. So, as for every contrib instrumentation:

- ``opentelemetry-instrument`` loads it; a framework that is never imported costs one
  post-import hook and nothing else (the integration module itself must not import
  its framework at top level: :meth:`FrameworkInstrumentor._patch` receives it);
- ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_<framework>`` keeps it off, and
  ``XInstrumentor().instrument()`` / ``.uninstrument()`` switch it in code;
- it patches at most once, however often ``instrument()`` is called;
- the installed version is checked when the framework is imported, against
  ``supported``: outside that range one line is logged and it stays off.
  (``opentelemetry-instrument`` calls ``instrument(skip_dep_check=True)`` after checking
  only agentstat's own distribution, whose ``instruments`` extra names no framework —
  it must not, or agentstat itself would be skipped wherever a framework is missing —
  so this check is the one that really happens. ``instrument()`` in code also runs
  the usual check of :meth:`instrumentation_dependencies` first.)

Hooks that see a run's start and end apart (callbacks, event listeners, wrapped
``iter``/``stream`` methods) time it with :func:`start_run` and :meth:`Run.finish`.
One logical run is recorded once: :func:`start_run` returns None while a run of the
same kind and key is open in the current context (``invoke`` calling ``stream``,
``run_sync`` calling ``run``), and while a dotted-path entry (``AGENTSTAT_AGENTS``) is
running on the same object. When a dotted entry is called inside an open integration
run of the same kind and object, the run is recorded once under the entry's name: the
user's explicit name wins.

A generator runs in its consumer's context, so a run started in a generator's body (a
wrapped stream) is :meth:`Run.detach`-ed at once and open only inside
:meth:`Run.attached`, around each step of the wrapped generator: between two chunks the
consumer is not inside the run (its own later runs of the same agent count).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import threading
from collections.abc import Collection
from time import perf_counter
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry import metrics
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from agentstat import semconv
from agentstat._metrics import bridge
from agentstat.instrumentation import _returned, _runners, _wrappers, recording
from agentstat.instrumentation._wrappers import ACTIVE, track

__all__ = ["FrameworkInstrumentor", "Run", "current_agent_name", "start_run"]

_logger = logging.getLogger("agentstat")


# ------------------------------------------------------------------------------ runs


class Run:
    """One timed logical run whose start and end a hook sees apart.

    Made by :func:`start_run`; call :meth:`finish` exactly when the run ends (again is
    harmless). While open it is visible to :func:`start_run` and
    :func:`current_agent_name` in the context it was started in.
    """

    __slots__ = ("_first", "_span", "_start", "_token", "agent_name", "done", "key", "kind",
                 "name", "tool_type")  # fmt: skip
    explicit = False  # an integration's run (dotted-path calls are explicit)

    def __init__(
        self,
        kind: str,
        name: str,
        key: object,
        agent_name: str | None,
        tool_type: str | None,
        start: float,
        span: Any,
    ) -> None:
        self.kind, self.name, self.key = kind, name, key
        self.agent_name, self.tool_type = agent_name, tool_type
        self._start, self._span = start, span
        self._first = False
        self._token: Any = None
        self.done = False

    def first_chunk(self) -> None:
        """The run produced its first chunk (streams): records time to first chunk once."""
        if self._first or self.done:
            return
        self._first = True
        try:
            rec = recording.recorder(self.kind, self.name, self.agent_name, self.tool_type)
            rec.first_chunk(perf_counter() - self._start)
        except Exception:
            _wrappers.log_failure()

    def finish(self, error: BaseException | str | None = None) -> None:
        """The run ended, failing with ``error`` (an exception, a fixed string used as
        ``error.type``, or None). Records once; never raises."""
        if self.done:
            return
        self.done = True
        seconds = perf_counter() - self._start
        try:
            try:
                kind_of_error = recording.error_value(error)
            except ValueError:
                kind_of_error = semconv.OTHER
            rec = recording.recorder(self.kind, self.name, self.agent_name, self.tool_type)
            rec.observe(max(seconds, 0.0), kind_of_error)
            if self._span is not None:
                self._span.update_name(rec.span_name)  # a dotted entry may have renamed it
                rec.end_span(self._span, None, kind_of_error or None)
        except Exception:
            _wrappers.log_failure()
        # Finished in another context (a thread, a callback), the reset fails: the run is
        # marked done, so lookups skip it and the next start_run there prunes it.
        if self._token is not None:
            with contextlib.suppress(Exception):
                ACTIVE.reset(self._token)

    def detach(self) -> None:
        """Take this run out of the current context again, right after
        :func:`start_run`: for a run started in a generator's body. A generator runs in
        its consumer's context, so a run left open there would be seen by everything
        the consumer does between two chunks (its later runs of the same agent would
        not be recorded). Use :meth:`attached` around each step of the generator."""
        token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(Exception):
                ACTIVE.reset(token)

    def attached(self) -> _Attached:
        """A context manager that makes this (detached) run open in the current
        context while its block runs, and restores exactly the previous value after:
        ``with run.attached(): value = next(steps)``. No-op once the run is done."""
        return _Attached(self)

    def finish_when_done(self, result: Any) -> Any:
        """Finish this run when ``result`` completes, and return what the caller should
        get: the same handle (a future: finished by its done-callback), a coroutine or
        stream timed to its end, a proxy of an awaitable or async context manager (the
        ``async with`` block is the run). Any other value finishes the run now. The
        call shapes of the dotted paths, for a hook that wraps a call returning one."""
        if self.done:
            return result
        shape = _returned.SHAPES.get(type(result), _returned.UNSEEN)
        if not shape:
            self.finish()
            return result
        return _returned.deferred(_Finisher(self), self._start, None, None, result, shape)

    def __repr__(self) -> str:
        state = "done" if self.done else "open"
        return f"<Run {self.kind} {self.name!r} {state}>"


class _Attached:
    """:meth:`Run.attached`: the run open in ``ACTIVE`` for one step of its generator."""

    __slots__ = ("run", "token")

    def __init__(self, run: Run) -> None:
        self.run = run
        self.token: Any = None

    def __enter__(self) -> Run:
        run = self.run
        if not run.done:
            self.token = ACTIVE.set((*ACTIVE.get(), run))  # lookups skip done entries
        return run

    def __exit__(self, *exc_info: object) -> None:
        token, self.token = self.token, None
        if token is not None:
            try:  # noqa: SIM105 -- contextlib.suppress costs ~0.5 µs per step here
                ACTIVE.reset(token)
            except (ValueError, RuntimeError):  # the step ended in another context
                pass


class _Finisher:
    """A :class:`Run` seen as the recorder the call-shape machinery finishes."""

    __slots__ = ("run",)

    def __init__(self, run: Run) -> None:
        self.run = run

    def first_chunk(self, seconds: float) -> None:
        self.run.first_chunk()

    def finish(self, start: float, exc: Any, span: Any, token: Any) -> None:
        self.run.finish(exc)


def _same_key(a: object, b: object) -> bool:
    # Objects by identity (pydantic models compare by value); names by value.
    return a is b or (type(a) is str and type(b) is str and a == b)


def start_run(
    kind: str,
    name: str,
    *,
    key: object = None,
    agent_name: str | None = None,
    tool_type: str | None = None,
    start: float | None = None,
) -> Run | None:
    """Start timing one ``kind`` run of ``name``; None when it must not be recorded.

    ``key`` identifies the logical run (the agent or graph object); None means the name
    does. None is returned under ``suppress_instrumentation()``, and while a run of the
    same kind and key is already open in this context (internal delegation) or a
    dotted-path call on the same object is running: one record per logical run.
    ``start`` is a ``time.perf_counter()`` reading when the run began earlier than
    this call. ``agent_name``/``tool_type`` are for tool runs. ValueError on misuse.
    """
    rec = recording.recorder(kind, name, agent_name, tool_type)  # validates
    if start is None:
        start = perf_counter()
    elif isinstance(start, bool) or not isinstance(start, int | float) or not math.isfinite(start):
        raise ValueError(f"start must be a time.perf_counter() reading, not {start!r}")
    if _wrappers._suppressed():
        return None
    if key is None:
        key = name
    active = ACTIVE.get()
    for entry in active:
        if not entry.done and entry.kind == kind and _same_key(entry.key, key):
            return None
    tracer = _runners._tracer
    span = None
    if tracer is not None:
        span, _ = rec.start_span(tracer, current=False)
    run = Run(kind, name, key, agent_name, tool_type, float(start), span)
    run._token = ACTIVE.set((*(e for e in active if not e.done), run))
    return run


def current_agent_name() -> str | None:
    """Name of the innermost open agent run in this context (integration runs, and
    dotted-path agents while an integration is patched), for a tool's
    ``gen_ai.agent.name``; None outside any."""
    for entry in reversed(ACTIVE.get()):
        if not entry.done and entry.kind == semconv.AGENT:
            return str(entry.name)
    return None


# ---------------------------------------------------------------------- instrumentor


class FrameworkInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of one framework's integration. Subclasses set the three class variables
    and implement :meth:`_patch` and :meth:`_unpatch`; the base does the rest."""

    #: Top-level import name, e.g. ``"pydantic_ai"``; hooks apply when it is imported.
    framework: ClassVar[str]
    #: Distribution whose version is checked, e.g. ``"pydantic-ai-slim"``.
    distribution: ClassVar[str]
    #: PEP 440 range of supported versions, e.g. ``">= 1.0, < 3"``.
    supported: ClassVar[str]

    _lock = threading.RLock()  # each subclass gets its own (see __init_subclass__)
    _wanted = False
    _patched = False
    _generation = 0
    _refused = False  # the one "outside the supported range" line was logged

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # BaseInstrumentor keeps one instance per class in ``_instance``; a subclass must
        # not find its parent's (or a sibling's) there.
        cls._instance = None
        cls._is_instrumented_by_opentelemetry = False
        cls._lock = threading.RLock()
        cls._wanted = cls._patched = cls._refused = False
        cls._generation = 0

    def instrumentation_dependencies(self) -> Collection[str]:
        return (f"{self.distribution} {self.supported}",)

    # -- subclass hooks --------------------------------------------------------------

    def _patch(self, module: ModuleType) -> None:
        """Wrap the framework (``module`` is its top-level package) or register hooks."""
        raise NotImplementedError

    def _unpatch(self) -> None:
        """Undo everything :meth:`_patch` did."""
        raise NotImplementedError

    # -- BaseInstrumentor --------------------------------------------------------------

    def _instrument(self, **kwargs: Any) -> None:
        provider = kwargs.get("meter_provider") or metrics.get_meter_provider()
        bridge.attach(provider)  # idempotent; the core instrumentor may be switched off
        with self._lock:
            type(self)._wanted = True
            type(self)._generation += 1
            generation = self._generation
        wrapt.register_post_import_hook(
            lambda module: self._on_import(module, generation), self.framework
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            type(self)._wanted = False
            type(self)._generation += 1
            if not self._patched:
                return
            type(self)._patched = False
            track(-1)
            try:
                self._unpatch()
            except Exception:
                _logger.exception("agentstat: could not undo the %s integration", self.framework)

    # -- internals -------------------------------------------------------------------

    def _on_import(self, module: ModuleType, generation: int) -> None:
        """The framework was imported (or already was): check its version, then patch."""
        try:
            with self._lock:
                if not self._wanted or self._patched or generation != self._generation:
                    return  # switched off since, or already patched: never twice
                if not self._version_supported():
                    return
                try:
                    self._patch(module)
                except Exception:
                    _logger.exception(
                        "agentstat: could not instrument %s; it stays uninstrumented",
                        self.framework,
                    )
                    try:
                        self._unpatch()
                    except Exception:
                        _logger.debug("agentstat: partial undo failed", exc_info=True)
                    return
                type(self)._patched = True
                track(+1)
        except Exception:  # an import hook must never break the user's import
            _logger.exception("agentstat: failed to instrument %s", self.framework)

    def _version_supported(self) -> bool:
        try:
            installed = importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            # The module imported under the framework's name is not the framework (a
            # user's own top-level ``agents`` module, say): nothing to say, nothing to do.
            _logger.debug(
                "agentstat: %s was imported but %s is not installed; %s stays off",
                self.framework,
                self.distribution,
                type(self).__name__,
            )
            return False
        try:
            ok = SpecifierSet(self.supported).contains(installed, prereleases=True)
        except InvalidSpecifier:
            ok = False
        if not ok and not self._refused:
            type(self)._refused = True
            found = f"{installed} is installed"
            _logger.warning(
                "agentstat: %s supports %s %s, but %s; %s stays off",
                type(self).__name__,
                self.distribution,
                self.supported,
                found,
                self.framework,
            )
        return ok
