"""The ``agentstat demo`` command: run the fleet, serve /metrics, print the summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

import click
from prometheus_client import REGISTRY, generate_latest

from agentstat.demo.fleet import FAULTS, Fleet
from agentstat.demo.summary import Summary
from agentstat.errors import ConfigError
from agentstat.exporter import DEFAULT_HOST, DEFAULT_PORT, start_metrics_server


async def _main(
    host: str,
    port: int,
    duration: float,
    faults: tuple[str, ...],
    seed: int | None,
    rate: float,
    interval: float,
    summary: bool,
    web_config: str | None,
) -> None:
    fleet = Fleet(faults, seed)
    server = start_metrics_server(
        port=port, host=host, service_name="agentstat-demo", web_config=web_config
    )
    click.echo(f"agentstat demo: serving {server.url}  faults: {', '.join(faults) or 'none'}")
    click.echo("Ctrl-C stops." if duration <= 0 else f"Stops after {duration:g}s or on Ctrl-C.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if duration > 0:
        loop.call_later(duration, stop.set)
    table = Summary(lambda: generate_latest(REGISTRY).decode())
    runner = asyncio.create_task(fleet.run(rate, stop))
    started = last = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            now = time.monotonic()
            if summary:
                click.echo(table.render(now - last))
            last = now
    finally:
        stop.set()
        await runner
        server.shutdown()
    click.echo(
        f"agentstat demo: stopped after {time.monotonic() - started:.1f}s, {fleet.tasks_done} tasks"
    )


@click.command("demo")
@click.option(
    "--host", default=DEFAULT_HOST, show_default=True, help="Address to serve /metrics on."
)
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0: any free one)."
)
@click.option("--duration", default=0.0, type=float, help="Seconds to run; 0 runs until Ctrl-C.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(sorted(FAULTS)),
    help="Break one target (repeatable): " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
)
@click.option("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
@click.option(
    "--rate",
    default=40.0,
    show_default=True,
    type=click.FloatRange(0.1, 2000),
    help="Tasks started per second (each calls several agents and tools).",
)
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between summary lines.",
)
@click.option("--no-summary", is_flag=True, help="Do not print the live summary.")
@click.option(
    "--web-config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Web configuration file (TLS, client certificates, basic auth; Prometheus "
    "exporter-toolkit format). Default: $AGENTSTAT_WEB_CONFIG_FILE.",
)
def demo_command(
    host: str,
    port: int,
    duration: float,
    faults: tuple[str, ...],
    seed: int | None,
    rate: float,
    interval: float,
    no_summary: bool,
    web_config: str | None,
) -> None:
    """Run a simulated agent fleet and serve its metrics on /metrics."""
    try:
        asyncio.run(
            _main(host, port, duration, faults, seed, rate, interval, not no_summary, web_config)
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        sys.exit(130)
