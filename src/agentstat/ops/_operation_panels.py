"""Dashboard panels of agents and tools (and of retries): latency against the
objectives, success, errors by type, throughput, heatmaps, time to first chunk."""

from __future__ import annotations

from agentstat import semconv
from agentstat.ops import promql
from agentstat.ops._grafana import (
    GREEN,
    JOB,
    ORANGE,
    RATE,
    RED,
    Panel,
    floor_steps,
    heatmap_panel,
    query_target,
    row_panel,
    threshold_steps,
    timeseries_panel,
)
from agentstat.ops.objectives import Objectives
from agentstat.semconv import Operation


def operation_panels(objectives: Objectives, operation: Operation, variable: str) -> list[Panel]:
    spec = operation.duration
    name = operation.name_label
    error = operation.error_label
    cancelled = semconv.ERROR_TYPE_CANCELLED
    entity = f'{name}=~"${variable}"'
    finished = promql.matchers(JOB, entity, f'{error}!="{cancelled}"')
    only_cancelled = promql.matchers(JOB, entity, f'{error}="{cancelled}"')
    failed = promql.matchers(JOB, entity, f'{error}!~"|{cancelled}"')
    calls = f"sum by ({name}) (rate({spec.count}{finished}[{RATE}]))"
    buckets = f"sum by ({name}, le) (rate({spec.bucket}{finished}[{RATE}]))"
    target_s = objectives.latency_p95_target_seconds
    alert_s = objectives.latency_p95_alert_seconds
    q = objectives.latency_quantile
    legend = f"{{{{{name}}}}}"
    noun, plural = operation.kind, f"{operation.kind}s"
    slow_targets = []
    for ref, bound in (("A", target_s), ("B", alert_s)):
        fast = promql.matchers(JOB, entity, promql.le_matcher(bound), f'{error}!="{cancelled}"')
        slow_targets.append(
            query_target(
                f"1 - sum by ({name}) (rate({spec.bucket}{fast}[{RATE}]))\n/\n{calls}",
                f"{legend} > {promql.num(bound)} s",
                ref,
            )
        )
    ttfc = operation.time_to_first_chunk
    first_chunk = promql.matchers(JOB, entity)
    first_chunk_buckets = f"sum by ({name}, le) (rate({ttfc.bucket}{first_chunk}[{RATE}]))"
    quantiles = [
        query_target(f"histogram_quantile({qq}, {buckets})", f"{legend} p{round(qq * 100)}", ref)
        for ref, qq in (("A", 0.5), ("B", q), ("C", 0.99))
    ]
    return [
        row_panel(f"{operation.title}s"),
        timeseries_panel(
            f"{operation.title} latency P50 / P{round(q * 100)} / P99",
            f"Interpolated quantiles per {noun} (cancelled calls excluded). Lines at the "
            f"target ({target_s} s) and the alert threshold ({alert_s} s); alerts use the "
            "exact bucket fractions in the next panel.",
            quantiles,
            "s",
            threshold_steps((GREEN, None), (ORANGE, target_s), (RED, alert_s)),
        ),
        timeseries_panel(
            f"{operation.title} calls slower than target and alert threshold",
            f"Exact share of calls above the {semconv.le_label(target_s)} s and "
            f"{semconv.le_label(alert_s)} s buckets. P{round(q * 100)} is above a bound "
            f"when this share exceeds {round((1 - q) * 100)} % (the line).",
            slow_targets,
            "percentunit",
            threshold_steps((GREEN, None), (RED, objectives.slow_fraction_alert)),
            maximum=1,
        ),
        timeseries_panel(
            f"{operation.title} success rate",
            f"Share of finished calls per {noun} that succeeded; cancelled calls are not "
            f"counted. Target {objectives.success_rate_target:.0%}, alert below "
            f"{objectives.success_rate_alert:.0%}.",
            [
                query_target(
                    "1 - "
                    + promql.share(f"sum by ({name}) (rate({spec.count}{failed}[{RATE}]))", calls),
                    legend,
                    "A",
                )
            ],
            "percentunit",
            floor_steps(objectives.success_rate_alert, objectives.success_rate_target),
            maximum=1,
        ),
        timeseries_panel(
            f"{operation.title} errors by type",
            f"Failed calls per second by {noun} and error.type (``_OTHER`` past the cap).",
            [
                query_target(
                    f"sum by ({name}, {error}) (rate({spec.count}{failed}[{RATE}]))",
                    f"{legend} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        timeseries_panel(
            f"{operation.title} throughput",
            f"Finished calls per second per {noun}, summed over every process; cancelled "
            "calls separately.",
            [
                query_target(calls, legend, "A"),
                query_target(
                    f"sum by ({name}) (rate({spec.count}{only_cancelled}[{RATE}]))",
                    f"{legend} cancelled",
                    "B",
                ),
            ],
            "reqps",
        ),
        heatmap_panel(
            f"{operation.title} latency heatmap",
            f"Calls per latency bucket over time, all selected {plural}.",
            f"sum by (le) (increase({spec.bucket}{finished}[{RATE}]))",
        ),
        timeseries_panel(
            f"{operation.title} time to first chunk P50 / P95",
            f"Streaming {plural} only: time from the call to its first chunk "
            "(interpolated quantiles), what a user waits before anything appears.",
            [
                query_target(
                    f"histogram_quantile({qq}, {first_chunk_buckets})",
                    f"{legend} p{round(qq * 100)}",
                    ref,
                )
                for ref, qq in (("A", 0.5), ("B", 0.95))
            ],
            "s",
        ),
    ]


def retry_panels() -> list[Panel]:
    attempts, give_ups = semconv.RETRY_ATTEMPTS, semconv.RETRY_GIVE_UPS
    target = attempts.label(semconv.RETRY_TARGET)
    error = attempts.label(semconv.ERROR_TYPE)
    return [
        row_panel("Retries"),
        timeseries_panel(
            "Retries per second",
            "Retries made after a failed attempt, by target and the error retried.",
            [
                query_target(
                    f"sum by ({target}, {error}) "
                    f"(rate({attempts.prometheus_name}{promql.matchers(JOB)}[{RATE}]))",
                    f"{{{{{target}}}}} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
        timeseries_panel(
            "Give-ups per second",
            "Calls that still failed when retrying stopped (attempts or deadline spent).",
            [
                query_target(
                    f"sum by ({target}, {error}) "
                    f"(rate({give_ups.prometheus_name}{promql.matchers(JOB)}[{RATE}]))",
                    f"{{{{{target}}}}} {{{{{error}}}}}",
                    "A",
                )
            ],
            "reqps",
        ),
    ]
