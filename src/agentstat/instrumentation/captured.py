"""Who else already holds a function that a dotted path is about to wrap.

A dotted path replaces a module (or class) attribute. Anything that took the function
before that keeps calling the original, unrecorded: a framework decorator in the same
module (``@agent.tool``, ``@function_tool``, ``@tool``), a ``tools=[search]`` list, a
registry, a closure, or another module that did ``from app.tools import search`` before
agentstat wrapped it. Targets are wrapped right after their module is imported, so
every capture made at import time happened first.

What is detectable, and how: just before wrapping, the attribute's reference count is
read (two when only the module or class holds it); only when it is higher are the
garbage collector's referrers walked (``gc.get_referrers``, tens of milliseconds in a
large process, once per such target), skipping stack frames and agentstat's own
objects. A holder is described by its type and module, one container level up at most
(a list held by an ``Agent`` reads as the ``Agent``). Not detectable: references held
only by objects the collector does not track (C extensions, ``atexit``), weak
references, and captures made later (those get the wrapper, so they need no warning).
"""

from __future__ import annotations

import gc
import importlib.metadata
import logging
import sys
import types
from typing import Any

_logger = logging.getLogger("agentstat")
_MAX_HOLDERS = 3
#: Referrers that say nothing by themselves: described by what holds them.
_CONTAINERS = (dict, list, tuple, set, frozenset, types.CellType, types.MethodType)


def _describe(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__!r}"
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__module__}.{obj.__qualname__}"
    tp = type(obj)
    return f"a {tp.__module__}.{tp.__qualname__} object"


def _top_module(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    elif isinstance(obj, types.FunctionType):
        name = obj.__module__ or ""
    else:
        name = type(obj).__module__
    return name.partition(".")[0]


def _ignored(obj: Any, namespace: Any) -> bool:
    if obj is namespace or isinstance(obj, types.FrameType):
        return True
    return type(obj).__module__.startswith("agentstat.")


def _owner_of(container: Any, namespace: Any, seen: set[int]) -> Any:
    """The object holding ``container`` (a dict, list, tuple, cell or bound method)."""
    for holder in gc.get_referrers(container):
        if id(holder) in seen or _ignored(holder, namespace):
            continue
        if isinstance(container, dict) and isinstance(holder, types.ModuleType):
            return holder
        if isinstance(holder, _CONTAINERS):
            continue  # one level up only
        return holder
    return container


def _closure_owner(cell: Any) -> Any:
    for closure in gc.get_referrers(cell):
        if isinstance(closure, tuple):
            for function in gc.get_referrers(closure):
                if isinstance(function, types.FunctionType) and function.__closure__ is closure:
                    return function
    return cell


def holders(owner: Any, attribute: str) -> list[Any]:
    """Live objects other than ``owner`` holding ``owner.<attribute>``'s current value."""
    namespace = getattr(owner, "__dict__", None)
    if namespace is None or attribute not in namespace:
        return []
    if isinstance(namespace, types.MappingProxyType):  # a class: its real dict
        namespace = next((d for d in gc.get_referents(namespace) if isinstance(d, dict)), None)
        if namespace is None:
            return []
    # 2 = the namespace's reference + this call's argument: nobody else holds it.
    if sys.getrefcount(namespace[attribute]) <= 2:
        return []
    value = namespace[attribute]
    if isinstance(value, type) or not callable(getattr(value, "__func__", value)):
        return []  # not a target at all: the patcher refuses it with its own message
    found: list[Any] = []
    seen = {id(namespace), id(value)}
    for referrer in gc.get_referrers(value):
        if _ignored(referrer, namespace) or id(referrer) in seen:
            continue
        seen.add(id(referrer))
        holder = referrer
        if isinstance(referrer, _CONTAINERS):
            holder = _owner_of(referrer, namespace, seen)
        if isinstance(holder, types.CellType):  # a closure: cell <- __closure__ <- function
            holder = _closure_owner(holder)
            if isinstance(holder, types.CellType):
                continue  # no live function owns it: nothing calls through it
        if holder is owner or any(h is holder for h in found):
            continue
        found.append(holder)
        if len(found) >= _MAX_HOLDERS:
            break
    return found


def _integration_for(top: str) -> str | None:
    """The agentstat integration entry point for framework ``top``, if one is installed."""
    try:
        for entry in importlib.metadata.entry_points(group="opentelemetry_instrumentor"):
            if not entry.name.startswith("agentstat_"):
                continue
            # The instrumentor's own import name (``langgraph.pregel``, ``agents``), not
            # its module's: loading an integration module imports no framework.
            framework = getattr(entry.load(), "framework", "")
            if isinstance(framework, str) and framework.partition(".")[0] == top:
                return entry.name
    except Exception:
        return None
    return None


def warn_if_held(owner: Any, attribute: str, kind: str, entry: str, path: str) -> bool:
    """Log one warning if ``owner.<attribute>`` was captured by something else; True if so.
    Never raises."""
    try:
        found = holders(owner, attribute)
    except Exception:
        _logger.debug("agentstat: could not look for earlier references", exc_info=True)
        return False
    if not found:
        return False
    described = ", ".join(_describe(h) for h in found)
    frameworks = sorted({_top_module(h) for h in found} - {path.partition(".")[0], "builtins"})
    integrations = [name for name in map(_integration_for, frameworks) if name]
    if integrations:
        advice = (
            f"the {', '.join(integrations)} integration times that framework's calls; "
            f"drop this entry or keep it for calls made through {path}"
        )
    else:
        advice = (
            f"decorate the function with @agentstat.{kind} beneath the framework's decorator, "
            "or name the framework object's method that calls it"
        )
    _logger.warning(
        "agentstat: %s entry %r: %s was captured before agentstat wrapped it, by %s; calls "
        "made through that reference are not recorded (%s)",
        kind,
        entry,
        path,
        described,
        advice,
    )
    return True
