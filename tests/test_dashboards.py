"""The generated Grafana dashboards: committed copies current, provisioning-friendly
structure, every query reading only metrics agentstat emits, thresholds at the targets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentstat.ops import dashboards, objectives
from agentstat.ops.objectives import DASHBOARD_UID_AGENTS, DASHBOARD_UID_RESOURCES, Objectives
from tests.helpers import REPO
from tests.promql_names import metric_names, table_names

FILES = sorted((REPO / "dashboards").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_dashboards_are_not_stale() -> None:
    """dashboards/*.json are exactly what the generator writes (and nothing else is there)."""
    expected = {name: dashboards.render(build()) for name, build in dashboards.DASHBOARDS.items()}
    assert {f.name for f in FILES} == set(expected)
    for path in FILES:
        assert path.read_text() == expected[path.name], f"{path.name} is stale: regenerate"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_provisioning_conventions(path: Path) -> None:
    """Fixed uid, a datasource variable instead of __inputs, every panel on ${datasource}."""
    text = path.read_text()
    board = json.loads(text)
    assert board["uid"] in (DASHBOARD_UID_AGENTS, DASHBOARD_UID_RESOURCES)
    assert "__inputs" not in board and "DS_PROMETHEUS" not in text
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "job" in variables
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(board):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            if target["expr"].startswith("count(ALERTS"):
                continue  # alerts carry the rules' labels, not the scrape's job
            assert 'job=~"$job"' in target["expr"], panel["title"]
            # rates over the panel's interval, or over an objective's own window
            windows = set(re.findall(r"\[([^\]]+)\]", target["expr"]))
            assert windows <= {"$__rate_interval", *_OBJECTIVE_WINDOWS}, panel["title"]


_OBJECTIVE_WINDOWS = {Objectives().error_budget_window, Objectives().imbalance_window}


def test_variables_for_every_entity() -> None:
    """job/agent/tool on one dashboard, job/cache/pool on the other, each multi with All."""
    names = {}
    for path in FILES:
        board = _load(path)
        names[board["uid"]] = [v["name"] for v in board["templating"]["list"]]
        for variable in board["templating"]["list"][1:]:
            assert variable["includeAll"] and variable["multi"]
            assert variable["query"]["query"].startswith("label_values(")
    assert names[DASHBOARD_UID_AGENTS] == ["datasource", "job", "agent", "tool"]
    assert names[DASHBOARD_UID_RESOURCES] == ["datasource", "job", "cache", "pool"]


def test_every_query_uses_known_metric_names() -> None:
    """Panel and variable queries read only series named in the metric table."""
    known = table_names()
    for path in FILES:
        board = _load(path)
        queries = [t["expr"] for p in _panels(board) for t in p["targets"]]
        for variable in board["templating"]["list"][1:]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["name"]
            queries.append(match.group(1))
        for query in queries:
            assert metric_names(query) <= known | {"ALERTS"}, query


def test_panels_required_by_the_issue() -> None:
    """Latency quantiles, success, error types, throughput, heatmap, cache hit rate,
    load against capacity, health, rejections and retries are all there."""
    titles = " | ".join(p["title"] for f in FILES for p in _panels(_load(f)))
    for needed in (
        "Agent latency P50 / P95 / P99",
        "Tool latency P50 / P95 / P99",
        "Agent success rate",
        "Agent errors by type",
        "Agent throughput",
        "Agent latency heatmap",
        "Cache hit rate by cache and tier",
        "Instance load over capacity",
        "Healthy instances",
        "Rejections per second",
        "Retries per second",
        "Agent time to first chunk P50 / P95",
        "Tool time to first chunk P50 / P95",
        "Load spread per pool",
        "Acquisitions that waited per second",
    ):
        assert needed in titles
    heatmaps = [p for f in FILES for p in _panels(_load(f)) if p["type"] == "heatmap"]
    assert heatmaps and all(t["format"] == "heatmap" for p in heatmaps for t in p["targets"])


def _steps(board: dict[str, Any], title: str) -> list[float]:
    panel = next(p for p in _panels(board) if p["title"] == title)
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [s["value"] for s in steps if s["value"] is not None]


def test_thresholds_at_target_and_alert_values() -> None:
    """Lines are drawn where the targets and alert thresholds are."""
    agents = _load(REPO / "dashboards" / "agentstat-agents.json")
    resources = _load(REPO / "dashboards" / "agentstat-resources.json")
    assert _steps(agents, "Agent latency P50 / P95 / P99") == [
        objectives.LATENCY_P95_TARGET_SECONDS,
        objectives.LATENCY_P95_ALERT_SECONDS,
    ]
    assert _steps(agents, "Agent success rate") == [
        objectives.SUCCESS_RATE_ALERT,
        objectives.SUCCESS_RATE_TARGET,
    ]
    assert _steps(resources, "Cache hit rate by cache and tier") == [
        objectives.CACHE_HIT_RATE_ALERT,
        objectives.CACHE_HIT_RATE_TARGET,
    ]
    assert _steps(resources, "Instance load over capacity") == [objectives.INSTANCE_LOAD_ALERT]


def test_slow_call_panels_use_the_exact_buckets() -> None:
    """The "slower than" panel reads the 0.5 s and 1 s buckets in every spelling, as the
    alerts do."""
    agents = _load(REPO / "dashboards" / "agentstat-agents.json")
    panel = next(p for p in _panels(agents) if p["title"].startswith("Agent calls slower"))
    exprs = " ".join(t["expr"] for t in panel["targets"])
    assert 'le="0.5"' in exprs
    assert 'le=~"1(\\\\.0)?"' in exprs  # le="1.0" from a scrape, le="1" from a Collector


def test_grid_positions_do_not_overlap() -> None:
    """Every panel has its own place on the grid."""
    for path in FILES:
        taken: set[tuple[int, int]] = set()
        for panel in _load(path)["panels"]:
            pos = panel["gridPos"]
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, panel["title"]
            taken |= cells


def test_both_dashboards_open_on_the_overview() -> None:
    """The first row is the overview: latency, success, error budget left, cache hit
    rate, busiest instance, load spread and firing alerts, as single numbers."""
    for path in FILES:
        panels = _load(path)["panels"]
        assert panels[0]["type"] == "row" and panels[0]["title"] == "Overview"
        overview = []
        for panel in panels[1:]:
            if panel["type"] == "row":
                break
            overview.append(panel)
        assert {p["type"] for p in overview} == {"stat"}
        titles = " | ".join(p["title"] for p in overview)
        for needed in (
            "P95 latency",
            "Success rate",
            "Error budget left",
            "Cache hit rate",
            "Busiest instance",
            "Load spread",
            "Firing agentstat alerts",
        ):
            assert needed in titles, path.name
        assert sum(p["gridPos"]["w"] for p in overview) == 24
