"""The example Alertmanager configuration is valid and routes agentstat's alerts by
severity, grouped per agent, and pages once per incident."""

from __future__ import annotations

import re
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


def _alerts_by_severity() -> list[tuple[str, str]]:
    """(alert name, severity) of every alert the rules emit (burn rates: both)."""
    found: dict[tuple[str, str], None] = {}
    for group in rules.rule_groups()["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found[(rule["alert"], rule["labels"]["severity"])] = None
    return list(found)


def _matches(matchers: list[str], name: str, severity: str) -> bool:
    labels = {"alertname": name, "severity": severity}
    for matcher in matchers:
        match = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher)
        assert match, matcher
        label, op, value = match.groups()
        if label not in labels:
            continue
        ok = re.fullmatch(value, labels[label]) if op == "=~" else labels[label] == value
        if not ok:
            return False
    return True


def _inhibitions() -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(source, target) alert pairs some inhibit rule silences (by name and severity)."""
    config = yaml.safe_load(CONFIG.read_text())
    alerts = _alerts_by_severity()
    return [
        (source, target)
        for rule in config["inhibit_rules"]
        for source in alerts
        for target in alerts
        if source != target
        and _matches(rule["source_matchers"], *source)
        and _matches(rule["target_matchers"], *target)
    ]


def test_every_ticket_is_quiet_while_its_page_fires() -> None:
    """Each warning alert is inhibited by a critical alert about the same thing."""
    inhibited = {target for source, target in _inhibitions() if source[1] == "critical"}
    warnings = {a for a in _alerts_by_severity() if a[1] == "warning"}
    assert warnings - inhibited == set()


def test_inhibitions_have_no_cycle() -> None:
    """No alert inhibits itself through others: a cycle would silence both sides."""
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for source, target in _inhibitions():
        edges.setdefault(source, set()).add(target)

    def reaches(start: tuple[str, str], goal: tuple[str, str], seen: set) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert not [a for a in edges if reaches(a, a, {a})]


def test_success_rate_page_silences_the_burn_rate_pages() -> None:
    """At 93 % success only AgentstatAgentSuccessRateLow pages, not the 6x burn too."""
    pairs = _inhibitions()
    source = ("AgentstatAgentSuccessRateLow", "critical")
    assert (source, ("AgentstatAgentErrorBudgetBurn", "critical")) in pairs
    assert (source, ("AgentstatAgentErrorBudgetBurn", "warning")) in pairs


def test_pages_are_grouped_per_thing_not_per_alert() -> None:
    """Every page about one agent, tool, cache or pool shares one group (one incident)."""
    config = yaml.safe_load(CONFIG.read_text())
    pager = next(r for r in config["route"]["routes"] if r["receiver"] == "pager")
    assert "alertname" not in pager["group_by"]
    assert {"gen_ai_agent_name", "gen_ai_tool_name", "agentstat_balancer_pool"} <= set(
        pager["group_by"]
    )
