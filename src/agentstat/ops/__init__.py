"""Operations: Prometheus rules, Grafana dashboards and the ``agentstat check`` gate,
all generated from one :class:`~agentstat.ops.objectives.Objectives` and the metric table in
:mod:`agentstat.semconv`.

Importing this package imports nothing heavy; the generators are plain functions that
return dicts, and ``python -m agentstat.ops.generate`` writes the committed files.
"""

from __future__ import annotations

from agentstat.ops.objectives import RUNBOOK_URL_BASE, BurnRate, Objectives, Targets

__all__ = [
    "RUNBOOK_URL_BASE",
    "BurnRate",
    "Objectives",
    "Targets",
]
