"""Cardinality caps: the one place that bounds how many distinct label values exist.

Names come from configuration or code and error types from exceptions; both are
bounded so that a bug (a name built from a request id, an exception class per call)
cannot blow up the number of series. Each capped namespace — a metric's names, a
metric's error types, the caches', pools', instances', tiers' and retry targets' names —
admits ``limit`` distinct values and turns later new values into ``_OTHER``. On top of
that every histogram metric holds at most ``AGENTSTAT_MAX_SERIES`` series (see
:class:`agentstat._metrics.histograms.HistogramFamily`).

What no cap ever changes: a success (no ``error.type``), ``cancelled`` and
``gen_ai.operation.name``; a value longer than :data:`MAX_VALUE_LENGTH` characters is
cut and given a short hash suffix, so two long names never merge. Each cap warns once,
the first time it turns a value into ``_OTHER`` or cuts one.

The limits are read from the environment once, on first use (``AGENTSTAT_MAX_NAMES``,
``AGENTSTAT_MAX_ERROR_TYPES``, ``AGENTSTAT_MAX_SERIES``); a bad value is reported by
:func:`agentstat.instrumentation.config.load_config` at start-up and the default used.
:meth:`Caps.reset` forgets every admitted value and reads them again
(``agentstat.testing.reset`` calls it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping

from agentstat.environment_variables import (
    AGENTSTAT_MAX_ERROR_TYPES,
    AGENTSTAT_MAX_NAMES,
    AGENTSTAT_MAX_SERIES,
)
from agentstat.semconv import (
    DEFAULT_MAX_ERROR_TYPES,
    DEFAULT_MAX_NAMES,
    ERROR_TYPE_CANCELLED,
    OTHER,
)

_logger = logging.getLogger("agentstat")

#: Series per histogram metric: the OpenTelemetry SDK's own default cardinality limit.
#: A full duration histogram is ~19 lines per series, so 2000 series make a ~8 MB page.
DEFAULT_MAX_SERIES = 2000
#: Longest label value kept as is; longer ones are cut to this length, hash included.
MAX_VALUE_LENGTH = 128
_HASH_CHARS = 8
#: ``error.type`` values no cap touches: success (empty), cancellation, and ``_OTHER``.
KEPT_ERROR_TYPES = frozenset({"", ERROR_TYPE_CANCELLED, OTHER})

_LIMITS = {
    "names": (AGENTSTAT_MAX_NAMES, DEFAULT_MAX_NAMES),
    "error_types": (AGENTSTAT_MAX_ERROR_TYPES, DEFAULT_MAX_ERROR_TYPES),
    "series": (AGENTSTAT_MAX_SERIES, DEFAULT_MAX_SERIES),
}


def shorten(value: str) -> str:
    """``value`` if short enough, else its first characters, ``~`` and 8 hex digits of
    its hash: :data:`MAX_VALUE_LENGTH` characters in all, distinct for distinct values."""
    if len(value) <= MAX_VALUE_LENGTH:
        return value
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=4)
    return f"{value[: MAX_VALUE_LENGTH - _HASH_CHARS - 1]}~{digest.hexdigest()}"


def _preview(value: str) -> str:
    return repr(value if len(value) <= 40 else f"{value[:40]}...")


#: ``admit(key, label, limit) -> (admitted, every admitted label when the cap is full)``:
#: the admission shared by the processes of one server, or None (this process alone).
#: Set by :mod:`agentstat._metrics.multiprocess`.
SharedAdmission = Callable[[str, str, int], tuple[bool, list[str] | None]]
_shared: SharedAdmission | None = None


def share_admission(admit: SharedAdmission | None) -> None:
    """Admit new values through ``admit`` from now on (None: this process decides)."""
    global _shared
    _shared = admit


class ValueCap:
    """Admits at most ``limit`` distinct values; later new values become ``_OTHER``.

    Lookups of admitted values take no lock (a dict read), so the cost on the hot path
    is one dict lookup. ``kept`` values pass through uncounted; values longer than
    :data:`MAX_VALUE_LENGTH` are admitted under their :func:`shorten`-ed form.
    ``what`` and ``setting`` only word the warnings. When the processes of a server
    share admission (``key`` names this cap's shared list), a new value gets in if any
    process admitted it or the shared list has room, so every process labels a value
    the same way.
    """

    __slots__ = (
        "_admitted", "_full", "_kept", "_learned", "_lock", "_warned",
        "key", "limit", "setting", "what",
    )  # fmt: skip

    def __init__(
        self,
        limit: int,
        *,
        what: str = "values",
        setting: str = "",
        kept: frozenset[str] = frozenset(),
        key: str = "",
    ) -> None:
        if limit < 1:
            raise ValueError(f"a cardinality limit must be at least 1, got {limit}")
        self.limit, self.what, self.setting, self._kept = limit, what, setting, kept
        self._admitted: dict[str, str] = {}  # value -> its label (itself, or shortened)
        self._warned: set[str] = set()  # which warnings were logged
        self.key = key
        self._full = False  # the shared list is full: only _learned labels get in
        self._learned: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        admitted = self._admitted.get(value)
        if admitted is not None:
            return admitted
        if value in self._kept:
            return value
        with self._lock:
            if value in self._admitted:
                return self._admitted[value]
            label = shorten(value)
            if not self._admit(label):
                self._warn_once(
                    "full",
                    "agentstat: %d distinct %s reached%s; new ones are recorded as %s",
                    self.limit,
                    self.what,
                    f" ({self.setting})" if self.setting else "",
                    OTHER,
                )
                return OTHER
            if label is not value:
                self._warn_once(
                    "long",
                    "agentstat: %s longer than %d characters are cut, with a hash suffix: "
                    "%s (%d characters) is recorded as %r",
                    self.what,
                    MAX_VALUE_LENGTH,
                    _preview(value),
                    len(value),
                    label,
                )
            self._admitted[value] = label
            return label

    def _admit(self, label: str) -> bool:
        """Whether a new ``label`` gets in: room here and, when admission is shared, in
        the server's list (one file lock and read per new value). Under ``_lock``."""
        if label in self._learned:
            return True
        if self._full or len(self._admitted) >= self.limit:
            return False
        shared = _shared
        if shared is None or not self.key:
            return True
        admitted, everything = shared(self.key, label, self.limit)
        if everything is not None:  # full: what the others admitted still gets in here
            self._full = True
            self._learned = frozenset(everything)
        return admitted

    def admitted(self) -> list[str]:
        """The labels admitted so far."""
        return list(self._admitted.values())

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _logger.warning(message, *args)

    def __len__(self) -> int:
        return len(self._admitted)


def limit_problem(variable: str, default: int, environ: Mapping[str, str]) -> str | None:
    """Why the setting ``variable`` is unusable (then ``default`` applies), or None."""
    raw = environ.get(variable, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value >= 1:
        return None
    return f"{variable}={raw!r}: not a positive integer; using {default}"


def limit_problems(environ: Mapping[str, str]) -> list[str]:
    """Every unusable limit setting in ``environ``, one line each."""
    problems = (limit_problem(var, default, environ) for var, default in _LIMITS.values())
    return [p for p in problems if p is not None]


def limit_from_env(variable: str, default: int) -> int:
    """A positive integer setting, or ``default`` (reported by ``load_config``)."""
    if limit_problem(variable, default, os.environ) is not None:
        return default
    raw = os.environ.get(variable, "").strip()
    return int(raw) if raw else default


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
        """The cap on ``error.type`` values in ``namespace``; success, ``cancelled`` and
        ``_OTHER`` pass uncounted."""
        return self._get(namespace, "error_types")

    def limit(self, what: str) -> int:
        """The limit ``what`` ("names", "error_types" or "series")."""
        limits = self._limits
        if limits is None:
            with self._lock:
                limits = self._read_limits()
        return limits[what]

    def _read_limits(self) -> dict[str, int]:
        if self._limits is None:
            self._limits = {
                what: limit_from_env(variable, default)
                for what, (variable, default) in _LIMITS.items()
            }
        return self._limits

    def _get(self, namespace: str, what: str) -> ValueCap:
        cap = self._caps.get((namespace, what))
        if cap is None:
            with self._lock:
                cap = self._caps.get((namespace, what))
                if cap is None:
                    limit = self._read_limits()[what]
                    if what == "names":
                        cap = ValueCap(
                            limit,
                            what=f"names of {namespace}",
                            setting=AGENTSTAT_MAX_NAMES,
                            key=f"names:{namespace}",
                        )
                    else:
                        cap = ValueCap(
                            limit,
                            what=f"error types of {namespace}",
                            setting=AGENTSTAT_MAX_ERROR_TYPES,
                            kept=KEPT_ERROR_TYPES,
                            key=f"error_types:{namespace}",
                        )
                    self._caps[(namespace, what)] = cap
        return cap

    def reset(self) -> None:
        """Forget every admitted value and read the limits again on next use.

        Objects that already hold a label keep it; new ones are capped afresh."""
        with self._lock:
            self._caps.clear()
            self._limits = None

    def all(self) -> list[ValueCap]:
        return list(self._caps.values())

    def after_fork_in_child(self) -> None:
        """New locks in a forked child (another thread may have held one at the fork);
        admitted values stay, so labels keep their meaning."""
        self._lock = threading.Lock()
        for cap in self._caps.values():
            cap._lock = threading.Lock()


CAPS = Caps()
