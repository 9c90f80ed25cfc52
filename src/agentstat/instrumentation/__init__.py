"""OpenTelemetry instrumentation for AI agents, tools, caches and load balancers.

Zero code change::

    pip install agentstat
    AGENTSTAT_AGENTS="myapp.agents:plan,myapp.agents:Researcher.run=researcher" \\
    AGENTSTAT_TOOLS="myapp.tools:search" \\
    opentelemetry-instrument python app.py
    curl 127.0.0.1:9464/metrics

agentstat ships an OpenTelemetry distro (``agentstat``) whose defaults are
``OTEL_METRICS_EXPORTER=prometheus``, ``OTEL_TRACES_EXPORTER=none``,
``OTEL_LOGS_EXPORTER=none`` and ``OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1``, so the
command above needs no other setting. Targets are wrapped when their module is imported,
before or after start-up.

In code::

    from agentstat import AgentstatInstrumentor

    AgentstatInstrumentor().instrument(
        meter_provider=meter_provider,          # default: the global one
        tracer_provider=tracer_provider,        # optional: spans per call
        agents=["myapp.agents:plan"],           # default: from the configuration
        tools=["myapp.tools:search=web_search"],
    )

``suppress_instrumentation()`` skips recording; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat``
turns the whole instrumentor off; ``uninstrument()`` restores every original.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Collection, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentstat._metrics import bridge as _bridge
from agentstat.errors import ConfigError, TargetError
from agentstat.instrumentation import _wrappers
from agentstat.instrumentation.config import KINDS, Config, Target, load_config, parse_entries
from agentstat.instrumentation.package import _instruments
from agentstat.instrumentation.patcher import Patcher
from agentstat.version import __version__

_logger = logging.getLogger("agentstat")


def _under_opentelemetry_instrument() -> bool:
    """True inside the sitecustomize that opentelemetry-instrument puts on PYTHONPATH."""
    site = sys.modules.get("sitecustomize")
    return "auto_instrumentation" in str(getattr(site, "__file__", ""))


def _config_from_kwargs(kwargs: dict[str, Any]) -> Config:
    config: Config = kwargs.get("config") or load_config()
    explicit = {kind: kwargs.get(f"{kind}s") for kind in KINDS}
    if not any(value is not None for value in explicit.values()):
        return config
    targets: list[Target] = [t for t in config.targets if explicit[t.kind] is None]
    errors: list[ConfigError] = list(config.errors)
    for kind, value in explicit.items():
        if value is not None:
            parsed, problems = parse_entries(kind, value)
            targets.extend(parsed)
            errors.extend(problems)
    return Config(
        targets=tuple(targets), strict=kwargs.get("strict", config.strict), errors=tuple(errors)
    )


def _patch_cache_class(cls: type, name: str) -> list[tuple[Any, str]]:
    from agentstat.instrumentation.user_caches import (
        patch_cache_class,  # only when caches are configured
    )

    return patch_cache_class(cls, name)


def _patch_balancer_class(cls: type, name: str) -> list[tuple[Any, str]]:
    from agentstat.instrumentation.user_balancers import patch_balancer_class

    return patch_balancer_class(cls, name)


class AgentstatInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records agent/tool durations and cache/balancer/retry counts as OTel metrics."""

    _patcher: Patcher | None = None
    _producers: list[Any]

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        config = _config_from_kwargs(kwargs)
        strict = bool(kwargs.get("strict", config.strict))
        self._producers = []
        self.bind_meter_provider(kwargs.get("meter_provider") or metrics.get_meter_provider())

        tracer_provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
        if _bridge.tracing_configured(tracer_provider):
            _wrappers.set_tracer(trace.get_tracer("agentstat", __version__, tracer_provider))

        patcher = Patcher(strict, {"cache": _patch_cache_class, "balancer": _patch_balancer_class})
        self._patcher = patcher
        try:
            for error in config.errors:
                patcher.problem(None, str(error))
            for target in config.targets:
                patcher.add(target)
        except TargetError as exc:
            patcher.undo()
            self._unbind()
            if _under_opentelemetry_instrument():
                # opentelemetry-instrument logs and swallows exceptions from instrumentors,
                # and SystemExit inside sitecustomize is a "Fatal Python error" wall of
                # text. Strict mode promises the app does not start: say why in one line
                # and stop before any user code has run.
                sys.stderr.write(f"{exc} (AGENTSTAT_STRICT is set)\n")
                sys.stderr.flush()
                os._exit(2)
            raise

    def bind_meter_provider(self, meter_provider: Any) -> None:
        """Export agentstat's metrics through ``meter_provider`` too (idempotent per provider)."""
        producer = _bridge.attach(meter_provider)
        if producer is not None:
            self._producers.append(producer)

    def _unbind(self) -> None:
        for producer in self._producers:
            producer.enabled = False
        self._producers = []
        _wrappers.set_tracer(None)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patcher is not None:
            self._patcher.undo()
            self._patcher = None
        self._unbind()


def instrument(
    *,
    agents: Sequence[str] | str | None = None,
    tools: Sequence[str] | str | None = None,
    meter_provider: Any = None,
    tracer_provider: Any = None,
) -> AgentstatInstrumentor:
    """Shorthand for ``AgentstatInstrumentor().instrument(...)``; returns the instrumentor."""
    instrumentor = AgentstatInstrumentor()
    instrumentor.instrument(
        agents=agents, tools=tools, meter_provider=meter_provider, tracer_provider=tracer_provider
    )
    return instrumentor
