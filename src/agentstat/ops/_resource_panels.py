"""Dashboard panels of caches (hit rate per cache and tier, fill, evictions) and of
the load balancer (load against capacity, health, spread, rejections, waits)."""

from __future__ import annotations

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops._grafana import (
    GREEN,
    JOB,
    RATE,
    RED,
    Panel,
    floor_steps,
    query_target,
    row_panel,
    threshold_steps,
    timeseries_panel,
)
from agentstat.ops.objectives import Objectives


def cache_panels(objectives: Objectives) -> list[Panel]:
    lookups = semconv.CACHE_LOOKUPS
    name = lookups.label(semconv.CACHE_NAME)
    tier = lookups.label(semconv.CACHE_TIER)
    result = lookups.label(semconv.CACHE_RESULT)
    reason = semconv.CACHE_EVICTIONS.label(semconv.CACHE_EVICTION_REASON)
    entity = f'{name}=~"$cache"'
    every = promql.matchers(JOB, entity)
    hits = promql.matchers(JOB, entity, f'{result}="{semconv.CACHE_RESULT_HIT}"')
    total = f"sum by ({name}, {tier}) (rate({lookups.prometheus_name}{every}[{RATE}]))"
    legend = f"{{{{{name}}}}} {{{{{tier}}}}}"
    size, capacity = semconv.CACHE_SIZE.prometheus_name, semconv.CACHE_CAPACITY.prometheus_name
    return [
        row_panel("Caches"),
        timeseries_panel(
            "Cache hit rate by cache and tier",
            f"Hits per lookup, summed over every process. Tier empty: an untiered cache; "
            f"{semconv.TIER_ALL!r}: a tiered cache as a whole. Target "
            f"{objectives.cache_hit_rate_target:.0%}, "
            f"alert below {objectives.cache_hit_rate_alert:.0%}.",
            [
                query_target(
                    promql.share(
                        f"sum by ({name}, {tier}) (rate({lookups.prometheus_name}{hits}[{RATE}]))",
                        total,
                    ),
                    legend,
                    "A",
                )
            ],
            "percentunit",
            floor_steps(objectives.cache_hit_rate_alert, objectives.cache_hit_rate_target),
            maximum=1,
        ),
        timeseries_panel(
            "Cache lookups per second",
            "Lookups by cache, tier and result.",
            [
                query_target(
                    f"sum by ({name}, {tier}, {result}) "
                    f"(rate({lookups.prometheus_name}{every}[{RATE}]))",
                    f"{legend} {{{{{result}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        timeseries_panel(
            "Cache fill",
            "Entries held over capacity per cache and tier (largest process).",
            [
                query_target(
                    f"max by ({name}, {tier}) (\n  {size}{every}\n"
                    f"  / ignoring (otel_scope_name, otel_scope_version, otel_scope_schema_url)"
                    f"\n  {capacity}{every}\n)",
                    legend,
                    "A",
                )
            ],
            "percentunit",
            maximum=1,
        ),
        timeseries_panel(
            "Cache evictions per second",
            "Entries the cache removed itself, by reason (size or expired).",
            [
                query_target(
                    f"sum by ({name}, {tier}, {reason}) "
                    f"(rate({semconv.CACHE_EVICTIONS.prometheus_name}{every}[{RATE}]))",
                    f"{legend} {{{{{reason}}}}}",
                    "A",
                )
            ],
            "ops",
        ),
    ]


def balancer_panels(objectives: Objectives) -> list[Panel]:
    load, capacity = semconv.INSTANCE_LOAD, semconv.INSTANCE_CAPACITY
    pool = load.label(semconv.POOL_NAME)
    instance = load.label(semconv.INSTANCE_ID)
    entity = promql.matchers(JOB, f'{pool}=~"$pool"')
    scope = "otel_scope_name, otel_scope_version, otel_scope_schema_url"
    per_instance = f"{{{{{pool}}}}} {{{{{instance}}}}}"
    wait = semconv.BALANCER_WAIT
    _, imbalance = promql.busiest_utilization(objectives, entity)
    return [
        row_panel("Load balancer"),
        timeseries_panel(
            "Instance load over capacity",
            "In-flight requests over capacity per instance, in the busiest process (as the "
            f"alert sees it). Alert above {objectives.instance_load_alert:.0%}.",
            [
                query_target(
                    f"max by ({pool}, {instance}) (\n  {load.prometheus_name}{entity}\n"
                    f"  / ignoring ({scope})\n  {capacity.prometheus_name}{entity}\n)",
                    per_instance,
                    "A",
                )
            ],
            "percentunit",
            threshold_steps((GREEN, None), (RED, objectives.instance_load_alert)),
            maximum=1,
        ),
        timeseries_panel(
            "In-flight requests and capacity",
            "Requests in flight per instance and the capacity granted to it, summed over "
            "every process.",
            [
                query_target(
                    f"sum by ({pool}, {instance}) ({load.prometheus_name}{entity})",
                    f"{per_instance} load",
                    "A",
                ),
                query_target(
                    f"sum by ({pool}, {instance}) ({capacity.prometheus_name}{entity})",
                    f"{per_instance} capacity",
                    "B",
                ),
            ],
            "short",
        ),
        timeseries_panel(
            "Healthy instances",
            "Healthy instances per pool as the worst process sees them; 0 means that "
            "process rejects every acquisition.",
            [
                query_target(
                    f"min by ({pool}) (\n  sum by ({pool}, job, instance) "
                    f"({semconv.INSTANCE_HEALTHY.prometheus_name}{entity})\n)",
                    f"{{{{{pool}}}}}",
                    "A",
                )
            ],
            "short",
            threshold_steps((RED, None), (GREEN, 1)),
        ),
        timeseries_panel(
            "Rejections per second",
            "Acquisitions refused because no healthy instance had capacity in time.",
            [
                query_target(
                    f"sum by ({pool}) "
                    f"(rate({semconv.BALANCER_REJECTIONS.prometheus_name}{entity}[{RATE}]))",
                    f"{{{{{pool}}}}}",
                    "A",
                )
            ],
            "reqps",
            threshold_steps((GREEN, None), (RED, 0.001)),
        ),
        timeseries_panel(
            "Selections per second",
            "How the balancer spreads work: selections per instance.",
            [
                query_target(
                    f"sum by ({pool}, {instance}) "
                    f"(rate({semconv.BALANCER_SELECTIONS.prometheus_name}{entity}[{RATE}]))",
                    per_instance,
                    "A",
                )
            ],
            "reqps",
        ),
        timeseries_panel(
            "Load spread per pool",
            "The busiest healthy instance's load per capacity over its pool's (all healthy "
            f"instances, every process), averaged over {objectives.imbalance_window}: 1 is "
            "an even, capacity-weighted spread. The ticket AgentstatPoolLoadUneven fires "
            f"above {promql.num(objectives.imbalance_alert)} (the line) for "
            f"{objectives.imbalance_for} while the instance is at least "
            f"{objectives.imbalance_min_utilization:.0%} busy and the pool makes "
            f"{promql.num(objectives.imbalance_min_selections)} selections/s or more.",
            [query_target(imbalance, f"{{{{{pool}}}}}", "A")],
            "none",
            threshold_steps((GREEN, None), (RED, objectives.imbalance_alert)),
        ),
        timeseries_panel(
            "Acquisitions that waited per second",
            "Acquisitions that found no free capacity and waited, per pool (0 when no "
            "caller waits: the series exists from the pool's creation).",
            [
                query_target(
                    f"sum by ({pool}) (rate({wait.count}{entity}[{RATE}]))",
                    f"{{{{{pool}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        timeseries_panel(
            "Wait for capacity P50 / P95",
            "Time callers waited for an instance with free capacity.",
            [
                query_target(
                    f"histogram_quantile({qq}, sum by ({pool}, le) "
                    f"(rate({wait.bucket}{entity}[{RATE}])))",
                    f"{{{{{pool}}}}} p{round(qq * 100)}",
                    ref,
                )
                for ref, qq in (("A", 0.5), ("B", 0.95))
            ],
            "s",
        ),
    ]
