"""Metrics for the user's own load-balancer classes, without code changes.

Usage (the instrumentor does this for ``AGENTSTAT_BALANCERS``)::

    pairs = patch_balancer_class(myapp.lb.LoadBalancer, "agents")
    ...
    for owner, attribute in pairs:
        opentelemetry.instrumentation.utils.unwrap(owner, attribute)

Shape (checked on the class; a class that does not fit raises ``TargetError``):
``acquire(agent_type)`` returns an instance or ``None``; ``release(instance)``. A ``None``
is a rejection of that pool, an instance a selection; instances seen (from ``acquire`` or
``register``) report ``current_load``, ``max_capacity`` and ``is_healthy``. The pool
label is the argument of ``acquire`` whose parameter is named ``agent_type`` or ``pool``;
without one, the returned instance's ``agent_type``, else the configured name.

Labels are the configured name, that pool argument and instance ids, all capped; other
arguments never are. Every wrapper checks ``is_instrumentation_enabled()``, calls the
user's method outside any ``try`` of ours (so its exceptions pass unchanged) and never
lets its own errors escape.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from agentstat._metrics.caps import CAPS
from agentstat._metrics.counts import COUNTS, Point
from agentstat.errors import TargetError
from agentstat.instrumentation._user_shapes import method as _method
from agentstat.instrumentation._user_shapes import patch_lock as _patch_lock
from agentstat.semconv import (
    BALANCER_REJECTIONS,
    BALANCER_SELECTIONS,
    INSTANCE_CAPACITY,
    INSTANCE_HEALTHY,
    INSTANCE_ID,
    INSTANCE_LOAD,
    OTHER,
    POOL_NAME,
)

_logger = logging.getLogger("agentstat")


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
                continue  # not the expected instance shape: selections only
            yield INSTANCE_LOAD, values, load
            yield INSTANCE_CAPACITY, values, capacity
            yield INSTANCE_HEALTHY, values, healthy


def _instance_label(instance: Any) -> str:
    ident = getattr(instance, "id", None)
    return CAPS.names(INSTANCE_ID)(ident) if isinstance(ident, str) else OTHER


_BALANCERS = _UserBalancerCounts()
COUNTS.register(_BALANCERS)  # type: ignore[arg-type]


_POOL_PARAMETERS = ("agent_type", "pool")


def _pool_parameter(method: Any) -> tuple[int | None, str | None]:
    """(position among the arguments after ``self`` or None, keyword name or None) of the
    parameter of ``acquire`` named ``agent_type`` or ``pool``; (None, None) if none is."""
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]  # no self
    except (TypeError, ValueError):
        return None, None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for index, parameter in enumerate(parameters):
        if parameter.name not in _POOL_PARAMETERS:
            continue
        position = index if parameter.kind in positional else None
        keyword = None if parameter.kind is inspect.Parameter.POSITIONAL_ONLY else parameter.name
        if position is not None or keyword is not None:
            return position, keyword
    return None, None


def _acquire_wrapper(cls: type, name: str) -> Any:
    """The wrapper of ``cls.acquire``: which argument names the pool is decided here, once.

    Only a parameter named ``agent_type`` or ``pool`` is taken as the pool: any other
    first argument (``acquire(task_text)``) may be user data, which never becomes a label.
    """
    position, keyword = _pool_parameter(_method(cls, "acquire"))

    def pool_label(args: tuple, kwargs: dict, instance: Any) -> str:
        pool = None
        if position is not None and len(args) > position:
            pool = args[position]
        elif keyword is not None:
            pool = kwargs.get(keyword)
        if not isinstance(pool, str):
            pool = getattr(instance, "agent_type", None)
        return CAPS.names(POOL_NAME)(pool if isinstance(pool, str) else name)

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        result = wrapped(*args, **kwargs)
        try:
            if inspect.isawaitable(result):
                return result  # an async acquire is not the supported shape: leave it alone
            pool = pool_label(args, kwargs, result)
            if result is None:
                _BALANCERS.rejected(pool)
            else:
                _BALANCERS.selected(pool, result)
        except Exception:
            _logger.debug("agentstat: balancer bookkeeping failed", exc_info=True)
        return result

    wrapper._agentstat_role = "acquire"  # type: ignore[attr-defined]
    return wrapper


def _register_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    result = wrapped(*args, **kwargs)
    try:
        registered = args[0] if args else next(iter(kwargs.values()), None)
        pool = getattr(registered, "agent_type", None)
        if isinstance(pool, str):
            _BALANCERS.track(CAPS.names(POOL_NAME)(pool), registered)
    except Exception:
        _logger.debug("agentstat: balancer bookkeeping failed", exc_info=True)
    return result


_register_wrapper._agentstat_role = "register"  # type: ignore[attr-defined]


def patch_balancer_class(cls: type, name: str) -> list[tuple[object, str]]:
    """Count selections and rejections of a duck-typed balancer class (``acquire``/``release``).

    The metrics are labelled by pool and instance; ``name`` is the pool label only when
    neither an ``agent_type``/``pool`` argument nor the instance's ``agent_type`` gives one.
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
        for attribute in ("acquire", "register"):
            current = cls.__dict__.get(attribute)
            if (
                isinstance(current, wrapt.FunctionWrapper)
                and getattr(current._self_wrapper, "_agentstat_role", None) == attribute
            ):
                pairs.append((cls, attribute))  # configured twice: wrapped once
                continue
            if _method(cls, attribute) is None:
                continue
            wrapper = _acquire_wrapper(cls, name) if attribute == "acquire" else _register_wrapper
            wrapt.wrap_function_wrapper(cls, attribute, wrapper)
            pairs.append((cls, attribute))
    return pairs


__all__ = ["patch_balancer_class"]
