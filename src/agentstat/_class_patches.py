"""Metrics for the user's own seed-shaped cache and balancer classes, without code changes.

Usage (the instrumentor does this for ``AGENTSTAT_CACHES`` / ``AGENTSTAT_BALANCERS``)::

    pairs = patch_cache_class(myapp.cache.LRUCache, "answers")
    pairs += patch_balancer_class(myapp.lb.LoadBalancer, "agents")
    ...
    for owner, attribute in pairs:
        opentelemetry.instrumentation.utils.unwrap(owner, attribute)

Shapes (checked on the class; a class that does not fit raises ``TargetError``):

- cache: ``get(key)`` returns the value or ``None`` on a miss. A ``None`` result is
  counted as a miss (the shape cannot tell a cached ``None`` from a miss). Size and
  capacity are reported when an instance has ``__len__`` (or a sized ``cache``/``data``
  attribute) and an integer ``max_size``/``maxsize``/``capacity``.
- tiered cache: the same class entry; an instance is tiered when its attributes hold
  cache-shaped objects (callable ``get`` and ``put``). Those attributes are its tiers, named
  by the attribute (``hot``, ``warm``, ``cold``), found at call time because instances only
  exist then. During a tiered ``get`` a context variable names the tiers, and the tier
  class's ``get`` wrapper counts under ``tier=<attribute>`` (and not under its own name);
  the whole lookup counts under ``tier="all"``. A tier class that is not configured itself
  is wrapped on first use and unwraps itself once every tiered class has been unwrapped.
- balancer: ``acquire(agent_type)`` returns an instance or ``None``; ``release(instance)``.
  A ``None`` is a rejection of that pool, an instance a selection; instances seen (from
  ``acquire`` or ``register``) report ``current_load``, ``max_capacity`` and ``is_healthy``.

Labels are the configured name, tier attribute names, the ``agent_type`` string passed to
``acquire`` and instance ids, all capped; keys, values and other arguments never are.
Every wrapper checks ``is_instrumentation_enabled()``, calls the user's method outside any
``try`` of ours (so its exceptions pass unchanged) and never lets its own errors escape.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from agentstat import _runtime_metrics as caps  # caps.cap_*: replaced by reset_caps()
from agentstat._runtime_metrics import REGISTRY, Point
from agentstat.aggregation import ValueCap
from agentstat.errors import TargetError
from agentstat.semconv import (
    BALANCER_REJECTIONS,
    BALANCER_SELECTIONS,
    CACHE_CAPACITY,
    CACHE_LOOKUPS,
    CACHE_RESULT_HIT,
    CACHE_RESULT_MISS,
    CACHE_SIZE,
    DEFAULT_MAX_NAMES,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    INSTANCE_LOAD,
    OTHER,
    TIER_ALL,
    TIER_NONE,
)

_logger = logging.getLogger("agentstat")

_SIZED_ATTRIBUTES = ("cache", "_cache", "data", "_data", "store", "_store", "entries")
_CAPACITY_ATTRIBUTES = ("max_size", "maxsize", "capacity", "_max_size", "_maxsize")

#: During a tiered cache's get: (tiered cache's label, {id(tier object): tier name}).
_TIERS: ContextVar[tuple[str, dict[int, str]] | None] = ContextVar("agentstat_tiers", default=None)


def _method(cls: type, name: str) -> Any:
    raw = inspect.getattr_static(cls, name, None)
    if isinstance(raw, staticmethod | classmethod):
        return None  # the shapes are instance methods
    return raw if callable(raw) else None


# ------------------------------------------------------------------------------ counts


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
            sizes = [s for s in map(_size_of, instances) if s is not None]
            capacities = [c for c in map(_capacity_of, instances) if c is not None]
            if sizes:
                yield CACHE_SIZE, values, sum(sizes)
            if capacities:
                yield CACHE_CAPACITY, values, sum(capacities)


def _size_of(instance: Any) -> int | None:
    try:
        if hasattr(type(instance), "__len__"):
            return len(instance)
        for attribute in _SIZED_ATTRIBUTES:
            value = getattr(instance, attribute, None)
            if isinstance(value, Mapping | list | set | dict):
                return len(value)
    except Exception:
        return None
    return None


def _capacity_of(instance: Any) -> int | None:
    for attribute in _CAPACITY_ATTRIBUTES:
        value = getattr(instance, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class _UserBalancerCounts:
    """Selections and rejections of user balancers, and the instances they handed out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.selections: dict[tuple[str, str], int] = {}
        self.rejections: dict[str, int] = {}
        # (pool, id) -> the instance, weakly when possible (bounded by the caps anyway)
        self.instances: dict[tuple[str, str], Any] = {}

    def selected(self, pool: str, instance: Any) -> None:
        key = (pool, _instance_label(instance))
        with self._lock:
            self.selections[key] = self.selections.get(key, 0) + 1
        self.track(pool, instance)

    def rejected(self, pool: str) -> None:
        with self._lock:
            self.rejections[pool] = self.rejections.get(pool, 0) + 1

    def track(self, pool: str, instance: Any) -> None:
        key = (pool, _instance_label(instance))
        with self._lock:
            held = self.instances.get(key)
            if held is not None and (held() if isinstance(held, weakref.ref) else held) is instance:
                return
            try:
                self.instances[key] = weakref.ref(instance)
            except TypeError:
                self.instances[key] = instance

    def counters(self) -> Iterator[Point]:
        with self._lock:
            selections, rejections = list(self.selections.items()), list(self.rejections.items())
        for values, value in selections:
            yield BALANCER_SELECTIONS, values, value
        for pool, value in rejections:
            yield BALANCER_REJECTIONS, (pool,), value

    def gauges(self, owner: Any) -> Iterator[Point]:
        with self._lock:
            items = list(self.instances.items())
        for values, held in items:
            instance = held() if isinstance(held, weakref.ref) else held
            if instance is None:
                continue
            try:
                load = int(instance.current_load)
                capacity = int(instance.max_capacity)
                healthy = 1 if instance.is_healthy else 0
            except Exception:
                continue  # not the seed's instance shape: selections only
            yield INSTANCE_LOAD, values, load
            yield INSTANCE_CAPACITY, values, capacity
            yield INSTANCE_HEALTHY, values, healthy


def _instance_label(instance: Any) -> str:
    ident = getattr(instance, "id", None)
    return caps.cap_instance(ident) if isinstance(ident, str) else OTHER


#: Tier attribute names are code, not data, but still bounded.
cap_tier = ValueCap(DEFAULT_MAX_NAMES)

_CACHES = _UserCacheCounts()
_BALANCERS = _UserBalancerCounts()
REGISTRY.register(_CACHES)  # type: ignore[arg-type]
REGISTRY.register(_BALANCERS)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ caches


class _GetState:
    """The label a wrapped ``get`` counts under when it is not used as a tier."""

    def __init__(self, name: str | None) -> None:
        self.name = name  # None: wrapped only because it is some tiered cache's tier


_get_states: dict[type, tuple[Any, _GetState]] = {}  # class -> (its wrapper, state)
_tiered_configured: list[type] = []  # configured classes, to know when lazy tiers may go
_patch_lock = threading.RLock()


def _is_ours(cls: type) -> _GetState | None:
    entry = _get_states.get(cls)
    if entry is None:
        return None
    current = cls.__dict__.get("get")
    return entry[1] if current is entry[0] else None


def _tiers_of(instance: Any) -> list[tuple[str, Any]]:
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
                labels = {id(tier): cap_tier(attribute) for attribute, tier in tiers}
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


def _drop_lazy_tier_patch(cls: type) -> None:
    """Called outside any tiered get: unwrap this lazily wrapped tier class when no
    configured class is wrapped any more (the instrumentor was turned off)."""
    with _patch_lock:
        for configured in _tiered_configured:
            state = _is_ours(configured)
            if state is not None and state.name is not None:
                return
        if _is_ours(cls) is not None:
            unwrap(cls, "get")
            _get_states.pop(cls, None)


def patch_cache_class(cls: type, name: str) -> list[tuple[object, str]]:
    """Count lookups (and tiers) of a seed-shaped cache class under ``name``."""
    if _method(cls, "get") is None:
        raise TargetError(f"{cls.__qualname__} has no get(key) method, so it is not a cache")
    label = caps.cap_cache_name(name)
    with _patch_lock:
        state = _is_ours(cls)
        if state is not None:  # wrapped lazily as a tier, or configured twice
            state.name = state.name or label
        else:
            _wrap_get(cls, _GetState(label))
        if cls not in _tiered_configured:
            _tiered_configured.append(cls)
    return [(cls, "get")]


# ---------------------------------------------------------------------------- balancers


def _pool_label(args: tuple, kwargs: dict, instance: Any) -> str:
    pool = args[0] if args else kwargs.get("agent_type", kwargs.get("pool"))
    if not isinstance(pool, str):
        pool = getattr(instance, "agent_type", None)
    return caps.cap_pool(pool) if isinstance(pool, str) else OTHER


def _acquire_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    result = wrapped(*args, **kwargs)
    try:
        if inspect.isawaitable(result):
            return result  # an async acquire is not the seed's shape: leave it alone
        pool = _pool_label(args, kwargs, result)
        if result is None:
            _BALANCERS.rejected(pool)
        else:
            _BALANCERS.selected(pool, result)
    except Exception:
        _logger.debug("agentstat: balancer bookkeeping failed", exc_info=True)
    return result


def _register_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    result = wrapped(*args, **kwargs)
    try:
        registered = args[0] if args else next(iter(kwargs.values()), None)
        pool = getattr(registered, "agent_type", None)
        if isinstance(pool, str):
            _BALANCERS.track(caps.cap_pool(pool), registered)
    except Exception:
        _logger.debug("agentstat: balancer bookkeeping failed", exc_info=True)
    return result


def patch_balancer_class(cls: type, name: str) -> list[tuple[object, str]]:
    """Count selections and rejections of a seed-shaped balancer class.

    ``name`` only identifies the entry: the metrics are labelled by pool and instance.
    """
    missing = [m for m in ("acquire", "release") if _method(cls, m) is None]
    if missing:
        raise TargetError(
            f"{cls.__qualname__} has no {' or '.join(missing)} method, so it is not a "
            "balancer (acquire(agent_type) -> instance or None, release(instance))"
        )
    if inspect.iscoroutinefunction(_method(cls, "acquire")):
        raise TargetError(f"{cls.__qualname__}.acquire is async; the balancer shape is sync")
    pairs: list[tuple[object, str]] = []
    with _patch_lock:
        for attribute, wrapper in (("acquire", _acquire_wrapper), ("register", _register_wrapper)):
            current = cls.__dict__.get(attribute)
            if isinstance(current, wrapt.FunctionWrapper) and current._self_wrapper is wrapper:
                pairs.append((cls, attribute))
                continue
            if _method(cls, attribute) is None:
                continue
            wrapt.wrap_function_wrapper(cls, attribute, wrapper)
            pairs.append((cls, attribute))
    return pairs


__all__ = ["patch_balancer_class", "patch_cache_class"]
