"""The store: every pre-aggregated histogram of the process, chosen once.

Wrappers, decorators and the runtime primitives record into :data:`STORE`; the reader
bridge (:mod:`agentstat._metrics.bridge`) reads it at collection time. It is the one
seam through which recording meets storage, so a different storage (one shared by the
processes of a pre-fork server) replaces this object and nothing that records changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from agentstat._metrics.histograms import HistogramFamily
from agentstat.semconv import DURATION_BUCKETS, MetricSpec


class Store:
    """Every pre-aggregated histogram of the process, with its start time.

    One store per process (:data:`STORE`) so that decorators applied at import time and
    instrumentation started later meet; tests call :meth:`reset`.
    """

    def __init__(self) -> None:
        self._families: dict[str, HistogramFamily] = {}
        self._lock = threading.Lock()
        self.start_time_unix_nano = time.time_ns()

    def histogram(self, spec: MetricSpec) -> HistogramFamily:
        family = self._families.get(spec.name)
        if family is None:
            if spec.buckets is DURATION_BUCKETS:  # the user may set their own bounds
                from agentstat.instrumentation.config import with_duration_buckets

                spec = with_duration_buckets(spec)
            with self._lock:
                family = self._families.setdefault(spec.name, HistogramFamily(spec))
        return family

    def families(self) -> Iterator[HistogramFamily]:
        return iter(list(self._families.values()))

    def reset(self) -> None:
        """Forget every series (for tests; a live process never needs this).

        Families stay, so wrappers holding one keep recording into the emptied store.
        """
        with self._lock:
            for family in self._families.values():
                family.clear()
            self.start_time_unix_nano = time.time_ns()


STORE = Store()
