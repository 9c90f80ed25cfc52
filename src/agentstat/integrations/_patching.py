"""Wrapping framework methods and putting the originals back, for the integrations.

A target is ``(module, class, attribute, wrapper)``; the wrapper is a wrapt wrapper
``(wrapped, instance, args, kwargs)``. :func:`unwrap_all` restores exactly what
:func:`wrap_all` replaced: a ``__wrapped__`` test cannot tell a wrapt proxy from a
framework method that ``functools.wraps`` decorated (``@asynccontextmanager``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import wrapt

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
