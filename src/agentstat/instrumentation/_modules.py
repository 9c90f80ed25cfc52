"""Whether a configured module exists, found at start-up without running user code.

``importlib.util.find_spec("pkg.sub")`` imports ``pkg`` to search it; agentstat must not
import the user's packages early (their import order and side effects are theirs), so a
submodule is searched in its parent package's directories instead. Only a module that
certainly cannot be imported is reported: a custom import hook, a plain module not yet
imported (which might put submodules into ``sys.modules`` when it runs), or any error
while searching counts as "may exist".
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from typing import Any

_UNSURE = object()


def missing_module(name: str) -> str | None:
    """Why module ``name`` certainly cannot be imported, or None when it can (or only
    running a package could tell). Runs none of the user's code: a submodule is
    searched in its parent package's directories, the parent is not imported."""
    if name in sys.modules:
        return None
    parts = name.split(".")
    locations: Any = None
    for index in range(len(parts)):
        fullname = ".".join(parts[: index + 1])
        module = sys.modules.get(fullname)
        if module is not None:
            locations = getattr(module, "__path__", None)
        else:
            spec = _find_top(fullname) if index == 0 else _find_sub(fullname, locations)
            if spec is _UNSURE:
                return None
            if spec is None:
                if index == 0:
                    return f"module {fullname!r} cannot be found"
                return f"package {'.'.join(parts[:index])!r} has no module {parts[index]!r}"
            locations = spec.submodule_search_locations
        if index < len(parts) - 1 and locations is None:
            if module is None:
                return None  # a plain module not imported yet: only running it could tell
            return f"{fullname!r} is a module, not a package, so it has no {name!r}"
    return None


def _find_top(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    except Exception:
        return _UNSURE


def _find_sub(fullname: str, locations: Any) -> Any:
    """The spec of ``fullname`` in its parent's ``locations``, without importing the
    parent; wrapt's post-import-hook finder is skipped (it would import it)."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(fullname, list(locations))
        if spec is not None:
            return spec
        for finder in sys.meta_path:
            if finder is importlib.machinery.PathFinder or type(finder).__module__.startswith(
                "wrapt"
            ):
                continue
            find = getattr(finder, "find_spec", None)
            if find is not None and find(fullname, list(locations), None) is not None:
                return _UNSURE  # found by a custom finder: trust it
    except Exception:
        return _UNSURE
    return None
