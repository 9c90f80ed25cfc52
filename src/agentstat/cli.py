"""The ``agentstat`` command. Subcommands are imported only when used, so
``agentstat --help`` stays fast and one subcommand's imports never slow another."""

from __future__ import annotations

import importlib

import click

from agentstat.version import __version__

#: subcommand -> "module:attribute" of its click command
_COMMANDS = {
    "demo": "agentstat.demo.command:demo_command",
    "rules": "agentstat.ops.cli:rules_command",
    "check": "agentstat.ops.cli:check_command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="agentstat")
def main() -> None:
    """Latency, success, cache and load metrics for AI agents, served to Prometheus."""
