"""The example Alertmanager configuration is valid and routes agentstat's alerts by
severity, grouped per agent."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from agentstat.ops import rules
from tests.helpers import REPO

CONFIG = REPO / "alerts" / "alertmanager.yml"


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_check_config() -> None:
    """amtool accepts alerts/alertmanager.yml."""
    result = subprocess.run(
        ["amtool", "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=AgentstatAgentLatencyHigh", "severity=critical"], "pager"),
        (["alertname=AgentstatCacheHitRateBelowTarget", "severity=warning"], "tickets"),
        (["alertname=Something", "severity=info"], "blackhole"),
    ],
)
def test_routing_by_severity(labels: list[str], receiver: str) -> None:
    """critical pages, warning opens a ticket, info goes nowhere (amtool's own router)."""
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_grouped_per_agent_and_every_severity_routed() -> None:
    """Notifications group by agent (and tool, cache, pool); every severity the rules use
    has a route."""
    config = yaml.safe_load(CONFIG.read_text())
    assert "gen_ai_agent_name" in config["route"]["group_by"]
    routed = {m for r in config["route"]["routes"] for m in r["matchers"]}
    for group in rules.rule_groups()["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert f'severity="{rule["labels"]["severity"]}"' in routed
