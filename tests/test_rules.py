"""The generated Prometheus rules: committed copy current, promtool-clean, covered by
promtool unit tests, every alert documented, and ``agentstat rules`` honouring overrides."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agentstat import semconv
from agentstat.errors import ConfigError
from agentstat.ops import objectives, promql, rules
from agentstat.ops.cli import rules_command
from agentstat.ops.generate import RULES_FILE, generated_files, stale_files
from agentstat.ops.objectives import RUNBOOK_URL_BASE, BurnRate, Objectives
from tests.helpers import REPO
from tests.promql_names import metric_names, table_names

ALERTS = REPO / "alerts"
RULES = REPO / RULES_FILE
TEST_FILES = sorted(ALERTS.glob("*test*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt install prometheus)"
)


def _alerts(doc: dict) -> list[dict]:
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_committed_files_are_not_stale() -> None:
    """Every generated file in the repository equals what the generators produce now."""
    stale = stale_files(REPO)
    assert not stale, f"regenerate with `python -m agentstat.ops.generate`: {stale}"


def test_rule_file_reads_back_as_the_generated_rules() -> None:
    """The YAML text (PyYAML, PromQL as literal blocks) loads back as exactly the dict."""
    assert yaml.safe_load(generated_files()[RULES_FILE]) == rules.rule_groups()


@needs_promtool
def test_promtool_check_rules() -> None:
    """promtool accepts the committed rules."""
    result = _promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    """The hand-written promtool tests pass against the committed rules."""
    assert TEST_FILES, "no alerts/*test*.yml"
    result = _promtool("test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: rules generated for a 2.5 s latency alert break them."""
    for test_file in TEST_FILES:
        shutil.copy(test_file, tmp_path / test_file.name)
    broken = Objectives(latency_p95_alert_seconds=2.5)
    (tmp_path / RULES.name).write_text(rules.render(broken))
    result = _promtool("test", "rules", *(tmp_path / f.name for f in TEST_FILES))
    assert result.returncode != 0
    assert "AgentstatAgentLatencyHigh" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """Each alert name appears in the promtool tests with a firing and a silent case."""
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in TEST_FILES:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(rules.alert_names())
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"


def test_every_alert_is_complete() -> None:
    """Every alert has severity, summary, description with labels/value, and runbook URL."""
    doc = yaml.safe_load(RULES.read_text())
    for alert in _alerts(doc):
        name = alert["alert"]
        assert re.fullmatch(r"Agentstat[A-Z][A-Za-z]+", name), name
        assert alert["labels"]["severity"] in ("critical", "warning"), name
        annotations = alert["annotations"]
        assert annotations["summary"] and "$labels" in annotations["summary"], name
        assert "$value" in annotations["description"], name
        assert "$labels" in annotations["description"], name
        assert annotations["runbook_url"] == f"{RUNBOOK_URL_BASE}#{name.lower()}", name


def _github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_runbook_anchor_exists() -> None:
    """Each alert's runbook_url anchor is a heading of docs/runbook.md."""
    anchors = _github_anchors(RUNBOOK.read_text())
    missing = [n for n in rules.alert_names() if n.lower() not in anchors]
    assert not missing, f"docs/runbook.md lacks sections for {missing}"


def test_rules_only_use_known_metric_names() -> None:
    """Every metric a rule reads is in the metric table or recorded by the same file."""
    doc = rules.rule_groups()
    known = table_names() | {
        r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r
    }
    for group in doc["groups"]:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{unknown} in {rule.get('record') or rule['alert']}"


def test_latency_uses_buckets_not_histogram_quantile() -> None:
    """Latency alerts read the exact 1.0 s / 0.5 s buckets; no rule interpolates."""
    text = RULES.read_text()
    assert "histogram_quantile" not in text
    le_alert = semconv.le_label(objectives.LATENCY_P95_ALERT_SECONDS)
    le_target = semconv.le_label(objectives.LATENCY_P95_TARGET_SECONDS)
    assert f'{{le="{le_alert}"}} > 0.05' in text
    assert f'{{le="{le_target}"}} > 0.05' in text


def test_default_burn_rates_follow_the_sre_workbook() -> None:
    """Page at 14.4x (1h/5m) and 6x (6h/30m), ticket at 3x (1d/2h) and 1x (3d/6h)."""
    burns = [
        (a["labels"]["long_window"], a["labels"]["short_window"], a["labels"]["severity"])
        for a in _alerts(rules.rule_groups())
        if a["alert"] == "AgentstatAgentErrorBudgetBurn"
    ]
    assert burns == [
        ("1h", "5m", "critical"),
        ("6h", "30m", "critical"),
        ("1d", "2h", "warning"),
        ("3d", "6h", "warning"),
    ]
    text = RULES.read_text()
    assert "agent:agentstat_errors_per_call:ratio_rate1h > 0.144" in text
    assert "agent:agentstat_errors_per_call:ratio_rate3d > 0.01" in text


def test_rules_command_applies_overrides() -> None:
    """`agentstat rules` puts the user's thresholds, selector and group_by in the rules."""
    result = CliRunner().invoke(
        rules_command,
        [
            "--set",
            "latency_p95_alert_seconds=2.5",
            "--set",
            "success_rate_alert=0.9",
            "--set",
            "rate_window=10m",
            "--selector",
            'job="agents"',
            "--group-by",
            "cluster",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.output)
    text = result.output
    assert 'le="2.5"' in text
    assert 'job="agents"' in text
    assert "sum by (gen_ai_agent_name, cluster)" in text
    success = next(a for a in _alerts(doc) if a["alert"] == "AgentstatAgentSuccessRateLow")
    assert success["expr"].startswith("agent:agentstat_errors_per_call:ratio_rate10m > 0.1\n")


@needs_promtool
def test_rules_command_output_passes_promtool(tmp_path: Path) -> None:
    """Rules for custom targets are valid too."""
    out = tmp_path / "custom.yml"
    result = CliRunner().invoke(
        rules_command,
        ["--selector", 'job=~"a|b"', "--burn-rate", "10:2h:10m:critical", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    check = _promtool("check", "rules", out)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["--set", "latency_p95_alert_seconds=2"], "not a bucket boundary"),
        (["--set", "success_rate_target=99"], "between 0 and 1"),
        (["--set", "rate_window=5 minutes"], "not a Prometheus duration"),
        (["--selector", "job=agents"], "not a PromQL matcher list"),
        (["--set", "bogus=1"], "expected NAME=VALUE"),
        (["--set", "imbalance_alert=1"], "must exceed 1"),
        (["--set", "imbalance_window=15 minutes"], "not a Prometheus duration"),
    ],
)
def test_rules_command_rejects_bad_settings(settings: list[str], message: str) -> None:
    """Bad settings fail with a usage error naming the problem, not a traceback."""
    result = CliRunner().invoke(rules_command, settings)
    assert result.exit_code == 2
    assert message in result.output


def test_a_burn_rate_that_can_never_fire_is_refused() -> None:
    """14.4x a 10 % budget needs 144 % errors; the config says so instead of shipping it."""
    with pytest.raises(ConfigError, match="could never fire"):
        Objectives(success_rate_target=0.9, success_rate_alert=0.8)
    Objectives(
        success_rate_target=0.9,
        success_rate_alert=0.8,
        burn_rates=(BurnRate(6, "6h", "30m", "critical"),),
    )


def test_latency_rules_match_both_spellings_of_le() -> None:
    """`le="1.0"` (a scrape) and `le="1"` (a Collector, an OTLP receiver) both count."""
    text = rules.render()
    assert 'le=~"1(\\\\.0)?"' in text
    assert 'le="0.5"' in text
    assert promql.le_spellings(1.0) == ["1", "1.0"]
    assert promql.le_spellings(600.0) == ["600", "600.0"]
    assert promql.le_spellings(0.25) == ["0.25"]


def test_every_recorded_ratio_is_rounded_to_nine_decimals() -> None:
    """Ratios compare exactly at their thresholds (see promql.exact)."""
    for group in rules.rule_groups()["groups"]:
        for rule in group["rules"]:
            name = rule.get("record", "")
            if ":ratio" in name or "utilization" in name or "imbalance" in name:
                assert rule["expr"].endswith("/ 1000000000"), name


def test_own_duration_buckets_make_any_threshold_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2 s among AGENTSTAT_DURATION_BUCKETS, `--set latency_p95_alert_seconds=2` is
    accepted and counted on the 2 s bucket, in both spellings."""
    monkeypatch.setenv("AGENTSTAT_DURATION_BUCKETS", "0.25,0.5,1,2,5,30")
    result = CliRunner().invoke(rules_command, ["--set", "latency_p95_alert_seconds=2"])
    assert result.exit_code == 0, result.output
    assert 'le=~"2(\\\\.0)?"' in result.output
    assert 'le: "2.0"' in result.output or "le: '2.0'" in result.output


def test_own_duration_buckets_from_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`duration_buckets` in [tool.agentstat] is read the same way; a bad value is a usage
    error naming its source."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTSTAT_DURATION_BUCKETS", raising=False)
    (tmp_path / "pyproject.toml").write_text("[tool.agentstat]\nduration_buckets = [0.5, 1, 3]\n")
    result = CliRunner().invoke(rules_command, ["--set", "latency_p95_alert_seconds=3"])
    assert result.exit_code == 0, result.output
    (tmp_path / "pyproject.toml").write_text("[tool.agentstat]\nduration_buckets = [1, 0.5]\n")
    result = CliRunner().invoke(rules_command, [])
    assert result.exit_code == 2
    assert "duration_buckets: bounds must increase" in result.output
