"""Cardinality caps: the one place that bounds how many distinct label values exist.

Names come from configuration or code and error types from exceptions; both are
bounded so that a bug (a name built from a request id, an exception class per call)
cannot blow up the number of series. Each capped namespace — a metric's names, a
metric's error types, the caches', pools', instances', tiers' and retry targets' names —
admits ``limit`` distinct values and turns later new values into ``_OTHER``.

The limits are read from the environment once, on first use (``AGENTSTAT_MAX_NAMES``,
``AGENTSTAT_MAX_ERROR_TYPES``); :meth:`Caps.reset` forgets every admitted value and
reads them again (``agentstat.testing.reset`` calls it).
"""

from __future__ import annotations

import logging
import os
import threading

from agentstat.environment_variables import AGENTSTAT_MAX_ERROR_TYPES, AGENTSTAT_MAX_NAMES
from agentstat.semconv import DEFAULT_MAX_ERROR_TYPES, DEFAULT_MAX_NAMES, OTHER

_logger = logging.getLogger("agentstat")


class ValueCap:
    """Admits at most ``limit`` distinct values; later new values become ``_OTHER``.

    Lookups of admitted values take no lock (a dict read), so the cost on the hot path
    is one dict lookup.
    """

    __slots__ = ("_admitted", "_lock", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a cardinality limit must be at least 1, got {limit}")
        self.limit = limit
        self._admitted: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        admitted = self._admitted.get(value)
        if admitted is not None:
            return admitted
        with self._lock:
            if value in self._admitted:
                return self._admitted[value]
            if len(self._admitted) >= self.limit:
                return OTHER
            self._admitted[value] = value
            return value

    def __len__(self) -> int:
        return len(self._admitted)


def limit_from_env(variable: str, default: int) -> int:
    """A positive integer setting; a bad value is logged and ``default`` used."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
        if value < 1:
            raise ValueError
    except ValueError:
        _logger.warning(
            "agentstat: %s=%r is not a positive integer; using %d", variable, raw, default
        )
        return default
    return value


class Caps:
    """Every cap of the process, created on first use per namespace."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caps: dict[tuple[str, str], ValueCap] = {}
        self._limits: dict[str, int] | None = None

    def names(self, namespace: str) -> ValueCap:
        """The cap on names in ``namespace`` (a metric name or a name attribute)."""
        return self._get(namespace, "names")

    def error_types(self, namespace: str) -> ValueCap:
        """The cap on ``error.type`` values in ``namespace``."""
        return self._get(namespace, "error_types")

    def _get(self, namespace: str, what: str) -> ValueCap:
        cap = self._caps.get((namespace, what))
        if cap is None:
            with self._lock:
                cap = self._caps.get((namespace, what))
                if cap is None:
                    if self._limits is None:
                        self._limits = {
                            "names": limit_from_env(AGENTSTAT_MAX_NAMES, DEFAULT_MAX_NAMES),
                            "error_types": limit_from_env(
                                AGENTSTAT_MAX_ERROR_TYPES, DEFAULT_MAX_ERROR_TYPES
                            ),
                        }
                    cap = self._caps[(namespace, what)] = ValueCap(self._limits[what])
        return cap

    def reset(self) -> None:
        """Forget every admitted value and read the limits again on next use.

        Objects that already hold a label keep it; new ones are capped afresh."""
        with self._lock:
            self._caps.clear()
            self._limits = None


CAPS = Caps()
