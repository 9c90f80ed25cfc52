"""Metrics for the user's own cache classes, without code changes.

Usage (the instrumentor does this for ``AGENTSTAT_CACHES``)::

    pairs = patch_cache_class(myapp.cache.LRUCache, "answers")
    ...
    for owner, attribute in pairs:
        opentelemetry.instrumentation.utils.unwrap(owner, attribute)

Shapes (checked on the class; a class that does not fit raises ``TargetError``):

- cache: ``get(key)`` returns the value or ``None`` on a miss. A ``None`` result is
  counted as a miss (the shape cannot tell a cached ``None`` from a miss). Size and
  capacity are reported when an instance has ``__len__`` (or a sized ``cache``/``data``
  attribute) and an integer ``max_size``/``maxsize``/``capacity``.
- tiered cache: the same class entry; an instance is tiered when its attributes hold
  cache-shaped objects (callable ``get`` and ``put``) of a class that is the user's own
  (not from the standard library or site-packages) or is itself a configured cache class.
  Those attributes are its tiers, named by the attribute (``hot``, ``warm``, ``cold``),
  found at call time because instances only exist then. During a tiered ``get`` a context
  variable names the tiers, and the tier class's ``get`` wrapper counts under
  ``tier=<attribute>`` (and not under its own name); the whole lookup counts under
  ``tier="all"``. A tier class that is not configured itself is wrapped on first use and
  unwraps itself once every tiered class has been unwrapped.

Labels are the configured name and tier attribute names, capped; keys and values never
are. Every wrapper checks ``is_instrumentation_enabled()``, calls the user's method
outside any ``try`` of ours (so its exceptions pass unchanged) and never lets its own
errors escape.
"""

from __future__ import annotations

import contextlib
import logging
import os
import site
import sys
import sysconfig
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from agentstat._metrics.caps import CAPS
from agentstat._metrics.counts import COUNTS, Point
from agentstat.errors import TargetError
from agentstat.instrumentation._user_shapes import method as _method
from agentstat.instrumentation._user_shapes import patch_lock as _patch_lock
from agentstat.semconv import (
    CACHE_CAPACITY,
    CACHE_LOOKUPS,
    CACHE_NAME,
    CACHE_RESULT_HIT,
    CACHE_RESULT_MISS,
    CACHE_SIZE,
    CACHE_TIER,
    TIER_ALL,
    TIER_NONE,
)

_logger = logging.getLogger("agentstat")

_SIZED_ATTRIBUTES = ("cache", "_cache", "data", "_data", "store", "_store", "entries")
_CAPACITY_ATTRIBUTES = ("max_size", "maxsize", "capacity", "_max_size", "_maxsize")

#: During a tiered cache's get: (tiered cache's label, {id(tier object): tier name}).
_TIERS: ContextVar[tuple[str, dict[int, str]] | None] = ContextVar("agentstat_tiers", default=None)


class _UserCacheCounts:
    """Lookups per (name, tier) of user caches, and their live instances for gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lookups: dict[tuple[str, str, str], int] = {}
        self.instances: dict[tuple[str, str], weakref.WeakSet[Any]] = {}

    def count(self, name: str, tier: str, hit: bool, instance: Any) -> None:
        result = CACHE_RESULT_HIT if hit else CACHE_RESULT_MISS
        key = (name, tier, result)
        with self._lock:
            self.lookups[key] = self.lookups.get(key, 0) + 1
        if tier != TIER_ALL:
            self.track(name, tier, instance)

    def track(self, name: str, tier: str, instance: Any) -> None:
        """Report ``instance``'s size and capacity under (name, tier) while it lives."""
        with self._lock:
            live = self.instances.setdefault((name, tier), weakref.WeakSet())
            with contextlib.suppress(TypeError):  # unhashable / no weakref: no gauges
                live.add(instance)

    def counters(self) -> Iterator[Point]:
        with self._lock:
            items = list(self.lookups.items())
        for values, value in items:
            yield CACHE_LOOKUPS, values, value

    def gauges(self, owner: Any) -> Iterator[Point]:
        with self._lock:
            groups = [(values, list(live)) for values, live in self.instances.items()]
        for values, instances in groups:
            sizes: list[int] = []
            capacities: list[int] = []
            for instance in instances:
                # The user's properties run here, inside a collection: an exception
                # escaping it would drop this metric for every cache.
                try:
                    size, capacity = _size_of(instance), _capacity_of(instance)
                except Exception:
                    _log_gauge_failure(instance)
                    continue
                if size is not None:
                    sizes.append(size)
                if capacity is not None:
                    capacities.append(capacity)
            if sizes:
                yield CACHE_SIZE, values, sum(sizes)
            if capacities:
                yield CACHE_CAPACITY, values, sum(capacities)


_gauge_failures_logged: set[str] = set()


def _log_gauge_failure(instance: Any) -> None:
    """Log, once per class, that an instance's size or capacity could not be read."""
    try:
        cls = type(instance)
        name = f"{cls.__module__}.{cls.__qualname__}"
    except Exception:
        name = "?"
    if name in _gauge_failures_logged:
        return
    _gauge_failures_logged.add(name)
    _logger.warning(
        "agentstat: reading the size or capacity of a %s failed; its instances report no "
        "size or capacity while it fails (logged once)",
        name,
        exc_info=True,
    )


def _size_of(instance: Any) -> int | None:
    if hasattr(type(instance), "__len__"):
        return len(instance)
    for attribute in _SIZED_ATTRIBUTES:
        value = getattr(instance, attribute, None)
        if isinstance(value, Mapping | list | set | dict):
            return len(value)
    return None


def _capacity_of(instance: Any) -> int | None:
    for attribute in _CAPACITY_ATTRIBUTES:
        value = getattr(instance, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


_CACHES = _UserCacheCounts()
COUNTS.register(_CACHES)  # type: ignore[arg-type]


class _GetState:
    """The label a wrapped ``get`` counts under when it is not used as a tier."""

    def __init__(self, name: str | None) -> None:
        self.name = name  # None: wrapped only because it is some tiered cache's tier


_get_states: dict[type, tuple[Any, _GetState]] = {}  # class -> (its wrapper, state)
_tiered_configured: list[type] = []  # configured classes, to know when lazy tiers may go


def _is_ours(cls: type) -> _GetState | None:
    entry = _get_states.get(cls)
    if entry is None:
        return None
    current = cls.__dict__.get("get")
    return entry[1] if current is entry[0] else None


def _library_roots() -> tuple[str, ...]:
    """Directories of the standard library and of installed packages, each ending in a /."""
    paths = sysconfig.get_paths()
    found = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    with contextlib.suppress(Exception):  # site may be a virtualenv's older site.py
        found += site.getsitepackages()
    with contextlib.suppress(Exception):
        found.append(site.getusersitepackages())
    return tuple(
        sorted({os.path.join(os.path.realpath(path), "") for path in found if path}, key=len)
    )


_LIBRARY_ROOTS = _library_roots()
#: class -> defined in the user's own code; weak, so classes made at run time can go
_user_classes: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _is_user_class(cls: type) -> bool:
    """Whether ``cls`` comes from a module file outside the stdlib and site-packages."""
    try:
        return _user_classes[cls]
    except KeyError:
        pass
    user = False
    try:
        module = sys.modules.get(cls.__module__)
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path:
            path = os.path.realpath(path)
            user = not any(path.startswith(root) for root in _LIBRARY_ROOTS)
        else:  # builtins, C modules with no file; a script run interactively is __main__
            user = cls.__module__ == "__main__"
    except Exception:
        user = False
    with contextlib.suppress(TypeError):
        _user_classes[cls] = user
    return user


def _is_configured(cls: type) -> bool:
    """Whether the ``get`` that ``cls`` uses is wrapped for a configured cache class."""
    for klass in cls.__mro__:
        if "get" in klass.__dict__:
            state = _is_ours(klass)
            return state is not None and state.name is not None
    return False


def _tiers_of(instance: Any) -> list[tuple[str, Any]]:
    """The attributes of ``instance`` that are its tiers, as (attribute, object) pairs.

    A tier is cache-shaped (callable ``get`` and ``put``) and its class is the user's own
    or a configured cache class. Why not any cache-shaped object: ``queue.Queue``, client
    objects and many library classes have ``get`` and ``put`` too, and a tier's class is
    wrapped process-wide, so one such attribute on a plain cache would count its lookups
    under tier "all" and slow every ``Queue.get`` in the process. Why not only configured
    classes: the documented set-up configures just the tiered class; its tier class is
    the user's own code. A library class meant as a tier can be configured itself.
    """
    try:
        attributes = vars(instance)
    except TypeError:
        return []
    return [
        (attribute, value)
        for attribute, value in attributes.items()
        if not isinstance(value, type | Mapping)
        and callable(getattr(value, "get", None))
        and callable(getattr(value, "put", None))
        and (_is_user_class(type(value)) or _is_configured(type(value)))
    ]


def _cache_get_wrapper(state: _GetState, cls: type) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled() or instance is None:
            return wrapped(*args, **kwargs)
        frame = _TIERS.get()
        tiers: list[tuple[str, Any]] = []
        try:
            if state.name is None and frame is None:
                _drop_lazy_tier_patch(cls)
            elif state.name is not None:
                tiers = _tiers_of(instance)
        except Exception:
            _logger.debug("agentstat: cache bookkeeping failed", exc_info=True)
        if tiers and state.name is not None:
            token = None
            try:
                labels = {id(tier): CAPS.names(CACHE_TIER)(attribute) for attribute, tier in tiers}
                for _, tier in tiers:
                    _ensure_tier_patch(type(tier))
                    _CACHES.track(state.name, labels[id(tier)], tier)
                token = _TIERS.set((state.name, labels))
            except Exception:
                _logger.debug("agentstat: tier detection failed", exc_info=True)
            try:
                result = wrapped(*args, **kwargs)
            finally:
                if token is not None:
                    _TIERS.reset(token)
            _count(state.name, TIER_ALL, result, instance)
            return result
        result = wrapped(*args, **kwargs)
        if frame is not None and id(instance) in frame[1]:
            _count(frame[0], frame[1][id(instance)], result, instance)
        elif state.name is not None:
            _count(state.name, TIER_NONE, result, instance)
        return result

    return wrapper


def _count(name: str, tier: str, result: Any, instance: Any) -> None:
    try:
        _CACHES.count(name, tier, result is not None, instance)
    except Exception:
        _logger.debug("agentstat: cache count failed", exc_info=True)


def _wrap_get(cls: type, state: _GetState) -> None:
    wrapt.wrap_function_wrapper(cls, "get", _cache_get_wrapper(state, cls))
    _get_states[cls] = (cls.__dict__["get"], state)


def _ensure_tier_patch(cls: type) -> None:
    """Wrap a tier class's ``get`` (unlabelled) unless it is wrapped already."""
    if _is_ours(cls) is not None or _method(cls, "get") is None:
        return
    with _patch_lock:
        if _is_ours(cls) is None:
            _wrap_get(cls, _GetState(None))


def _any_configured_wrapped() -> bool:
    for configured in _tiered_configured:  # append-only: safe to iterate without the lock
        state = _is_ours(configured)
        if state is not None and state.name is not None:
            return True
    return False


def _drop_lazy_tier_patch(cls: type) -> None:
    """Called outside any tiered get: unwrap this lazily wrapped tier class when no
    configured class is wrapped any more (the instrumentor was turned off)."""
    if _any_configured_wrapped():  # the common case, checked without the lock
        return
    with _patch_lock:
        if _any_configured_wrapped():
            return
        if _is_ours(cls) is not None:
            unwrap(cls, "get")
            _get_states.pop(cls, None)


def patch_cache_class(cls: type, name: str) -> list[tuple[object, str]]:
    """Count lookups (and tiers) of a duck-typed cache class (``get``/``put``) under ``name``."""
    if _method(cls, "get") is None:
        raise TargetError(f"{cls.__qualname__} has no get(key) method, so it is not a cache")
    label = CAPS.names(CACHE_NAME)(name)
    with _patch_lock:
        state = _is_ours(cls)
        if state is not None:  # wrapped lazily as a tier, or configured twice
            state.name = state.name or label
        else:
            _wrap_get(cls, _GetState(label))
        if cls not in _tiered_configured:
            _tiered_configured.append(cls)
    return [(cls, "get")]
