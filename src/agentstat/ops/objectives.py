"""One description of the performance objectives, read by the rule and dashboard generators
and by ``agentstat check``.

Everything a user may want to change for their own fleet lives in :class:`Objectives`:
thresholds (defaulting to the table below), windows,
``for:`` durations, label selectors, labels to keep when aggregating, and the
minimum traffic below which an alert stays quiet. It is validated on construction, so a
bad setting fails with a message naming it instead of producing rules that never fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agentstat import semconv
from agentstat.environment_variables import AGENTSTAT_DURATION_BUCKETS
from agentstat.errors import ConfigError

#: Base of every alert's ``runbook_url``; the alert name, lower-cased, is the anchor
#: (GitHub's anchor of the runbook heading ``## AgentstatXxx``).
RUNBOOK_URL_BASE = "https://github.com/agentstat/agentstat/blob/main/docs/runbook.md"

#: Stable dashboard uids, so links and provisioning survive regeneration.
DASHBOARD_UID_AGENTS = "agentstat-agents"
DASHBOARD_UID_RESOURCES = "agentstat-resources"

#: The performance objectives agentstat ships, and the alert thresholds beside them.
LATENCY_P95_TARGET_SECONDS = 0.5
LATENCY_P95_ALERT_SECONDS = 1.0
SUCCESS_RATE_TARGET = 0.99
SUCCESS_RATE_ALERT = 0.95
CACHE_HIT_RATE_TARGET = 0.80
CACHE_HIT_RATE_ALERT = 0.50
INSTANCE_LOAD_ALERT = 0.80

SEVERITY_CRITICAL = "critical"
SEVERITY_WARNING = "warning"

_DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^(?:{_MATCHER}(?:,{_MATCHER})*)?,?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m`` (raises ConfigError if malformed)."""
    if not _DURATION.match(value):
        raise ConfigError(f"{value!r} is not a Prometheus duration (examples: 30s, 5m, 1h30m)")
    return float(
        sum(int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", value))
    )


@dataclass(frozen=True)
class BurnRate:
    """One multi-window burn-rate condition of the error-budget alert (SRE workbook).

    Fires when the error ratio over *both* windows exceeds ``factor`` times the budget
    (1 - objective): the long window proves the burn is significant, the short one that
    it is still going on, so the alert resets quickly once the burn stops.
    """

    factor: float
    long_window: str
    short_window: str
    severity: str
    for_: str = "0s"


#: The SRE workbook's pairs for a 30-day budget: page on 14.4x (1h, 5m) and 6x (6h, 30m),
#: ticket on 3x (1d, 2h) and 1x (3d, 6h).
SRE_WORKBOOK_BURN_RATES: tuple[BurnRate, ...] = (
    BurnRate(14.4, "1h", "5m", SEVERITY_CRITICAL, "2m"),
    BurnRate(6.0, "6h", "30m", SEVERITY_CRITICAL, "15m"),
    BurnRate(3.0, "1d", "2h", SEVERITY_WARNING, "1h"),
    BurnRate(1.0, "3d", "6h", SEVERITY_WARNING, "3h"),
)


@dataclass(frozen=True)
class Objectives:
    """Thresholds, windows and selectors for agentstat's rules, dashboards and check.

    Ratios are fractions (0.99, not 99). ``selector`` is a PromQL matcher list added to
    every raw-metric selector (``job="agents"``); ``group_by`` names labels kept when
    aggregating (``("cluster",)`` gives one answer per agent per cluster instead of one
    across everything). ``process_labels`` identify one process (a scraped target, and
    on a page that merges a server's workers, each worker's ``process_pid``); they
    decide "no healthy instance" per process, because each process's balancer only
    routes to the instances *it* sees as healthy.
    """

    latency_p95_target_seconds: float = LATENCY_P95_TARGET_SECONDS
    latency_p95_alert_seconds: float = LATENCY_P95_ALERT_SECONDS
    latency_quantile: float = 0.95
    success_rate_target: float = SUCCESS_RATE_TARGET
    success_rate_alert: float = SUCCESS_RATE_ALERT
    cache_hit_rate_target: float = CACHE_HIT_RATE_TARGET
    cache_hit_rate_alert: float = CACHE_HIT_RATE_ALERT
    instance_load_alert: float = INSTANCE_LOAD_ALERT
    #: Even distribution: the busiest healthy instance's utilisation (load over
    #: capacity) may be at most this many times its pool's (all load over all capacity
    #: of the healthy instances), i.e. its capacity-weighted fair share. Fair pools
    #: (round robin, least loaded, weights that follow capacity) measured <= 1.14x with
    #: the real balancer wherever their busiest instance was 25 % busy, up to 1.52x
    #: below that; see docs/operations.md.
    imbalance_alert: float = 1.5
    #: ... judged only while the pool makes at least this many selections per second
    #: (below it, a 15-minute average of a sampled gauge is noise: 0.1/s read 1.5-5.5x) ...
    imbalance_min_selections: float = 1.0
    #: ... and while its busiest instance is at least this busy: below a quarter of its
    #: capacity an instance makes nobody wait, so unevenness costs nothing there.
    imbalance_min_utilization: float = 0.25
    #: Window of the load averages: load is a gauge sampled once per scrape.
    imbalance_window: str = "15m"
    #: Bucket bounds (s) of the duration histograms the latency thresholds must be
    #: among; ``agentstat rules`` and ``agentstat check`` pass the configured ones
    #: (:func:`agentstat.instrumentation.config.duration_buckets`).
    duration_buckets: tuple[float, ...] = semconv.DURATION_BUCKETS

    #: Tiers whose hit rate is judged: an untiered cache ("") and a tiered cache as a
    #: whole ("all"). One tier's own hit rate is a diagnostic, not the target: a lower
    #: tier only sees the misses of the tiers above it, and a hot tier is small by
    #: design. Tiers are recorded and drawn; alerting on them is opt-in ("hot", ...).
    cache_alert_tiers: tuple[str, ...] = (semconv.TIER_NONE, semconv.TIER_ALL)

    selector: str = ""
    group_by: tuple[str, ...] = ()
    process_labels: tuple[str, ...] = (
        "job",
        "instance",
        semconv.prometheus_label(semconv.PROCESS_PID),
    )

    #: Window of the ratio alerts (latency, success rate, cache, load, rejections).
    rate_window: str = "5m"
    burn_rates: tuple[BurnRate, ...] = SRE_WORKBOOK_BURN_RATES

    latency_for: str = "10m"
    latency_target_for: str = "30m"
    success_rate_for: str = "5m"
    cache_hit_rate_for: str = "15m"
    cache_hit_rate_target_for: str = "1h"
    instance_load_for: str = "10m"
    no_healthy_instance_for: str = "1m"
    rejections_for: str = "5m"
    imbalance_for: str = "15m"
    #: The period the error budget is spent over (the burn rates assume 30 days); the
    #: dashboards' "error budget left" reads it.
    error_budget_window: str = "30d"

    #: Calls an agent or tool must make within an alert's (short) window before the
    #: alert may fire: a single slow or failed call of an idle agent must not page.
    min_calls: int = 20
    #: Lookups a cache (tier) must serve within ``rate_window`` before its hit rate counts.
    min_cache_lookups: int = 100
    #: Evaluation interval of the rule groups; ``None`` keeps Prometheus's global one.
    evaluation_interval: str | None = None

    runbook_url_base: str = RUNBOOK_URL_BASE
    extra_labels: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Fail loudly on settings that would produce broken or silent rules."""
        for name in (
            "success_rate_target",
            "success_rate_alert",
            "cache_hit_rate_target",
            "cache_hit_rate_alert",
            "instance_load_alert",
            "latency_quantile",
            "imbalance_min_utilization",
        ):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ConfigError(f"{name} must be a fraction between 0 and 1, got {value!r}")
        if self.success_rate_alert > self.success_rate_target:
            raise ConfigError(
                f"success_rate_alert ({self.success_rate_alert}) must not exceed "
                f"success_rate_target ({self.success_rate_target})"
            )
        if self.cache_hit_rate_alert > self.cache_hit_rate_target:
            raise ConfigError(
                f"cache_hit_rate_alert ({self.cache_hit_rate_alert}) must not exceed "
                f"cache_hit_rate_target ({self.cache_hit_rate_target})"
            )
        if self.latency_p95_target_seconds > self.latency_p95_alert_seconds:
            raise ConfigError(
                f"latency_p95_target_seconds ({self.latency_p95_target_seconds}) must not "
                f"exceed latency_p95_alert_seconds ({self.latency_p95_alert_seconds})"
            )
        for name in ("latency_p95_target_seconds", "latency_p95_alert_seconds"):
            bound = getattr(self, name)
            if float(bound) not in self.duration_buckets:
                raise ConfigError(
                    f"{name}={bound!r} is not a bucket boundary of the duration histograms; "
                    f"latency rules count calls per bucket exactly, so pick one of "
                    f"{', '.join(semconv.le_label(b) for b in self.duration_buckets)}, or add "
                    f"it to the bounds ({AGENTSTAT_DURATION_BUCKETS} or duration_buckets in "
                    "[tool.agentstat], the same for every process and for this command)"
                )
        if not _SELECTOR.match(self.selector):
            raise ConfigError(
                f"selector {self.selector!r} is not a PromQL matcher list "
                '(example: job="agents",namespace=~"prod-.*")'
            )
        for label in (*self.group_by, *self.process_labels, *self.extra_labels):
            if not _LABEL_NAME.match(label):
                raise ConfigError(f"{label!r} is not a valid Prometheus label name")
        durations = {
            name: getattr(self, name)
            for name in (
                "rate_window",
                "latency_for",
                "latency_target_for",
                "success_rate_for",
                "cache_hit_rate_for",
                "cache_hit_rate_target_for",
                "instance_load_for",
                "no_healthy_instance_for",
                "rejections_for",
                "imbalance_window",
                "imbalance_for",
                "error_budget_window",
            )
        }
        if self.evaluation_interval is not None:
            durations["evaluation_interval"] = self.evaluation_interval
        for name, value in durations.items():
            try:
                duration_seconds(value)
            except ConfigError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        if not self.burn_rates:
            raise ConfigError("burn_rates must hold at least one window pair")
        budget = 1 - self.success_rate_target
        for burn in self.burn_rates:
            if duration_seconds(burn.short_window) >= duration_seconds(burn.long_window):
                raise ConfigError(
                    f"burn rate {burn.factor}x: short window {burn.short_window} must be "
                    f"shorter than long window {burn.long_window}"
                )
            duration_seconds(burn.for_)
            if burn.factor <= 0:
                raise ConfigError(f"burn rate factor must be positive, got {burn.factor}")
            if burn.factor * budget >= 1:
                raise ConfigError(
                    f"burn rate {burn.factor}x of a {budget:.2%} error budget needs an error "
                    f"ratio of {burn.factor * budget:.0%}: that alert could never fire; "
                    "lower the factor or raise success_rate_target"
                )
            if burn.severity not in (SEVERITY_CRITICAL, SEVERITY_WARNING):
                raise ConfigError(f"burn rate severity must be critical or warning: {burn}")
        if not self.imbalance_alert > 1:
            raise ConfigError(
                "imbalance_alert is a multiple of the fair share and must exceed 1, "
                f"got {self.imbalance_alert!r}"
            )
        if not self.imbalance_min_selections > 0:
            raise ConfigError(
                "imbalance_min_selections (selections per second) must be positive, "
                f"got {self.imbalance_min_selections!r}"
            )
        if not self.cache_alert_tiers:
            raise ConfigError("cache_alert_tiers must name at least one tier ('' for untiered)")
        if self.min_calls < 1 or self.min_cache_lookups < 1:
            raise ConfigError("min_calls and min_cache_lookups must be at least 1")
        if not self.runbook_url_base.startswith(("http://", "https://")):
            raise ConfigError(f"runbook_url_base must be an http(s) URL: {self.runbook_url_base}")

    @property
    def slow_fraction_alert(self) -> float:
        """Share of calls allowed above a latency bound while the quantile stays below it."""
        return round(1 - self.latency_quantile, 10)

    @property
    def error_budget(self) -> float:
        """Allowed error ratio of the success objective (0.01 for 99 %)."""
        return round(1 - self.success_rate_target, 10)

    def windows(self) -> tuple[str, ...]:
        """Every window a ratio is recorded over, shortest first, without duplicates."""
        found = {self.rate_window}
        for burn in self.burn_rates:
            found.update((burn.long_window, burn.short_window))
        return tuple(sorted(found, key=duration_seconds))

    def runbook_url(self, alert: str) -> str:
        """Where the runbook section of ``alert`` lives."""
        return f"{self.runbook_url_base}#{alert.lower()}"


#: The name this class had before 0.2; kept so existing code keeps working.
Targets = Objectives
