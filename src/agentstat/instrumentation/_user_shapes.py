"""What the user's own cache and balancer classes share when patched by path.

:mod:`agentstat.instrumentation.user_caches` and
:mod:`agentstat.instrumentation.user_balancers` patch classes the user names in
``AGENTSTAT_CACHES`` / ``AGENTSTAT_BALANCERS``; both check method shapes the same way and
patch under one lock.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

#: Held while a user class is patched or unpatched.
patch_lock = threading.RLock()


def method(cls: type, name: str) -> Any:
    """The instance method ``name`` of ``cls`` as stored, or None (static/class methods and
    non-callables do not fit the shapes)."""
    raw = inspect.getattr_static(cls, name, None)
    if isinstance(raw, staticmethod | classmethod):
        return None  # the shapes are instance methods
    return raw if callable(raw) else None
