"""``agentstat rules`` and ``agentstat check``: the generators and the target check for
the user's own thresholds, windows and selectors."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import click

from agentstat.environment_variables import AGENTSTAT_CHECK_PASSWORD
from agentstat.errors import ConfigError
from agentstat.ops.objectives import BurnRate, Objectives

#: Exit code when there is no verdict (a page cannot be read; click uses it for bad
#: options too); 1 means a target was missed.
EXIT_UNREADABLE = 2

_FIELDS = {f.name: f for f in dataclasses.fields(Objectives)}
_SETTABLE = sorted(
    name
    for name, f in _FIELDS.items()
    if f.type in ("float", "int", "str", "str | None") and name != "selector"
)


def _coerce(name: str, text: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "float":
            return float(text)
        if kind == "int":
            return int(text)
    except ValueError:
        raise ConfigError(f"{name} needs a {kind}, got {text!r}") from None
    return text


def _burn_rate(text: str) -> BurnRate:
    parts = text.split(":")
    if len(parts) not in (4, 5):
        raise ConfigError(
            f"--burn-rate {text!r}: expected FACTOR:LONG:SHORT:SEVERITY[:FOR], "
            "e.g. 14.4:1h:5m:critical:2m"
        )
    try:
        factor = float(parts[0])
    except ValueError:
        raise ConfigError(f"--burn-rate {text!r}: {parts[0]!r} is not a number") from None
    return BurnRate(factor, parts[1], parts[2], parts[3], *parts[4:])


def build_objectives(
    settings: tuple[str, ...] = (),
    selector: str | None = None,
    group_by: tuple[str, ...] = (),
    burn_rates: tuple[str, ...] = (),
) -> Objectives:
    """A :class:`Objectives` from command-line settings (``name=value`` pairs), with the
    duration buckets the instrumentation uses
    (:func:`agentstat.instrumentation.config.duration_buckets`)."""
    from agentstat.instrumentation.config import duration_buckets

    values: dict[str, Any] = {"duration_buckets": duration_buckets()}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in _SETTABLE:
            raise ConfigError(
                f"--set {item!r}: expected NAME=VALUE with NAME one of {', '.join(_SETTABLE)}"
            )
        values[name] = _coerce(name, text.strip())
    if selector is not None:
        values["selector"] = selector
    if group_by:
        values["group_by"] = tuple(group_by)
    if burn_rates:
        values["burn_rates"] = tuple(_burn_rate(b) for b in burn_rates)
    return Objectives(**values)


_target_options = [
    click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override one target setting (repeatable), e.g. latency_p95_alert_seconds=2.5, "
        "success_rate_target=0.995, rate_window=10m, latency_for=15m, min_calls=50. "
        f"Names: {', '.join(_SETTABLE)}.",
    ),
    click.option(
        "--selector",
        default=None,
        metavar="MATCHERS",
        help="PromQL matchers added to every selector, e.g. 'job=\"agents\"'.",
    ),
    click.option(
        "--group-by",
        multiple=True,
        metavar="LABEL",
        help="Keep this label when aggregating (repeatable), e.g. cluster.",
    ),
]


def _with_target_options(command: Any) -> Any:
    for option in reversed(_target_options):
        command = option(command)
    return command


@click.command("rules")
@_with_target_options
@click.option(
    "--burn-rate",
    "burn_rates",
    multiple=True,
    metavar="FACTOR:LONG:SHORT:SEVERITY[:FOR]",
    help="Replace the SRE-workbook burn-rate pairs (repeatable), e.g. 14.4:1h:5m:critical:2m.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def rules_command(
    settings: tuple[str, ...],
    selector: str | None,
    group_by: tuple[str, ...],
    burn_rates: tuple[str, ...],
    output: str | None,
    as_json: bool,
) -> None:
    """Print Prometheus recording and alerting rules for your objectives.

    Defaults are the shipped rules (alerts/agentstat-rules.yml): P95 < 500 ms (alert
    > 1 s), success > 99 % (alert < 95 %, multi-window burn rates), cache hit > 80 %
    (alert < 50 %), instance load alert > 80 %, even distribution (busiest healthy
    instance at most 1.5x its capacity-weighted share). Latency thresholds must be
    duration bucket bounds: set your own bounds with AGENTSTAT_DURATION_BUCKETS or
    duration_buckets in [tool.agentstat], the same as the instrumented processes use.
    """
    from agentstat.ops import rules

    try:
        objectives = build_objectives(settings, selector, group_by, burn_rates)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    text = (
        json.dumps(rules.rule_groups(objectives), indent=2) + "\n"
        if as_json
        else rules.render(objectives)
    )
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)


def _read_password(path: str) -> str:
    """The password in ``path``, without its trailing newline (as Prometheus reads
    ``password_file``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read --password-file {path}: {exc.strerror or exc}") from exc


@click.command("check")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between the two readings.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["target", "alert"]),
    default="target",
    show_default=True,
    help="Exit 1 when a target is missed, or only when an alert threshold is crossed.",
)
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA file for https:// pages.")
@click.option(
    "--cert-file", type=click.Path(dir_okay=False), help="Client certificate (mutual TLS)."
)
@click.option("--key-file", type=click.Path(dir_okay=False), help="Key of --cert-file.")
@click.option("--username", help="Basic-auth user name.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="File holding the basic-auth password (default: $AGENTSTAT_CHECK_PASSWORD).",
)
@_target_options[0]
def check_command(
    urls: tuple[str, ...],
    interval: float,
    fail_on: str,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    username: str | None,
    password_file: str | None,
    settings: tuple[str, ...],
) -> None:
    """Check live /metrics pages against the objectives; exit 1 on a breach.

    Reads every URL (one per worker process; they are summed) twice, INTERVAL seconds
    apart, and prints P50/P95/P99 and success rate per agent and tool, hit rate per
    cache and tier, and load per balanced instance. Exit codes: 0 all objectives met,
    1 a breach, 2 no verdict (a page could not be read, or bad options). Entities
    with fewer than min_calls calls in the interval are shown as idle and never fail.
    """
    from agentstat.ops.check import Status, format_report, run_check
    from agentstat.ops.scrape_client import Credentials, ScrapeError, make_fetch

    try:
        objectives = build_objectives(settings)
        password = os.environ.get(AGENTSTAT_CHECK_PASSWORD)
        if password_file is not None:
            password = _read_password(password_file)
        credentials = Credentials(ca_file, cert_file, key_file, username, password)
        fetch = make_fetch(credentials)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    full = [u if "://" in u else f"http://{u}" for u in urls]
    full = [u if u.rstrip("/").endswith("/metrics") else u.rstrip("/") + "/metrics" for u in full]
    try:
        report = run_check(full, interval, objectives, get=fetch)
    except ScrapeError as exc:
        click.echo(f"agentstat check: {exc}", err=True)
        raise SystemExit(EXIT_UNREADABLE) from None
    click.echo(format_report(report))
    threshold = Status.BELOW_TARGET if fail_on == "target" else Status.ALERT
    if report.breaches(threshold):
        raise SystemExit(1)
