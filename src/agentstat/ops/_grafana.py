"""The Grafana JSON vocabulary agentstat's dashboards are written in: targets,
thresholds, time series, stats, heatmaps, rows, variables, layout, the dashboard.

Why plain dicts and not grafana-foundation-sdk (Grafana's typed builders), measured here
with the SDK from the package index: it can express every panel agentstat draws, but

* its version scheme defeats pinning by range: ``pip install grafana-foundation-sdk``
  picks ``1769699998!10.1.0`` (the Grafana 10.1 build, schemaVersion 36) over the 11.6
  build, which needs the exact epoch pin ``==1769699379!11.6.0`` and writes
  schemaVersion 41 (these dicts: 39), so the Grafana versions the files suit would follow
  whichever SDK build generated them;
* the same code breaks across builds (10.1 names ``GraphTresholdsStyleMode``, 11.6
  ``GraphThresholdsStyleMode``);
* its output differs from what these dicts say and what the live test proves on a real
  Prometheus: ``"style": "dark"``, ``"options": null`` on a bare stat panel, variable ids
  ``"00000000-..."``, no panel ids, its own grid layout, an empty annotation list;
* a panel is as many lines either way (one builder call per option), for 4.8 MB of
  dependency. The committed JSON is the product; these dicts say exactly what it holds.
"""

from __future__ import annotations

from typing import Any

from agentstat.ops import promql

Panel = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
JOB = 'job=~"$job"'
GREEN, ORANGE, RED = "green", "orange", "red"
SCHEMA_VERSION = 39


def query_target(expr: str, legend: str, ref: str, *, heatmap: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": True,
    }
    if heatmap:
        target["format"] = "heatmap"
    return target


def threshold_steps(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def floor_steps(alert: float, target: float) -> dict[str, Any]:
    """Thresholds of a share that should stay high (success, cache hits): red below
    the alert, orange up to the target, green from it."""
    return threshold_steps((RED, None), (ORANGE, alert), (GREEN, target))


def timeseries_panel(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any] | None = None,
    *,
    maximum: float | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        },
        "thresholds": thresholds or threshold_steps((GREEN, None)),
    }
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat_panel(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any],
    width: int,
) -> Panel:
    for target in targets:
        target["instant"], target["range"] = True, False
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": thresholds, "color": {"mode": "thresholds"}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "justifyMode": "center",
        },
        "gridPos": {"h": 4, "w": width},
    }


def heatmap_panel(title: str, description: str, expr: str) -> Panel:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [query_target(expr, "{{le}}", "A", heatmap=True)],
        "fieldConfig": {"defaults": {"unit": "s"}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "tooltip": {"show": True, "yHistogram": True},
        },
    }


def row_panel(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def template_variable(
    name: str, label: str, metric: str, label_name: str, depends_on_job: bool
) -> dict[str, Any]:
    selector = promql.matchers(JOB) if depends_on_job else ""
    query = f"label_values({metric}{selector}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def layout(panels: list[Panel]) -> list[Panel]:
    """Ids and grid positions: rows span the width, graphs go two abreast, stats keep
    the width they were given; a panel that does not fit starts a new line."""
    y, x, height = 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        panel["id"] = panel_id
        if panel["type"] == "row":
            y, x, height = y + height, 0, 0
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        size = panel.get("gridPos", {"h": 8, "w": 12})
        if x + size["w"] > 24:
            y, x, height = y + height, 0, 0
        panel["gridPos"] = {"h": size["h"], "w": size["w"], "x": x, "y": y}
        x += size["w"]
        height = max(height, size["h"])
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[Panel],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentstat"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout(panels),
    }
