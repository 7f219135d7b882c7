"""Prometheus rules and config, the Grafana dashboard and scripts/ensure-prometheus.sh.

* Prometheus: `promtool` (Debian package `prometheus`, installed by
  scripts/ensure-prometheus.sh) checks alerts.yml and prometheus.yml and runs the rule
  unit tests. These tests fail, never skip, without it.
* Alerts: the required set, runbook links into docs/operations.md, and a firing and a
  quiet unit test for each.
* Metric names in alerts and the dashboard: parsed with `promql-parser` and compared
  with what streams.metrics.Metrics exports; the dashboard's structure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from deploy_support import (
    ENSURE_PROMETHEUS,
    OPERATIONS_DOC,
    PROM,
    ROOT,
    alert_rules,
    dashboard_exprs,
    dashboard_queries,
    load_dashboard,
    load_yaml,
    metric_names,
    require_tool,
    run,
    walk_dicts,
)

from streams.metrics import Metrics

# --------------------------------------------------------------------------------------
# Prometheus rules and config (promtool is mandatory)
# --------------------------------------------------------------------------------------

PROMTOOL_HINT = "run scripts/ensure-prometheus.sh (installs Debian's prometheus package)"


def promtool(*args: str) -> None:
    binary = require_tool("promtool", PROMTOOL_HINT)
    result = run([binary, *args], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    promtool("check", "rules", "alerts.yml")


def test_promtool_test_rules() -> None:
    promtool("test", "rules", "alerts_test.yml")


def test_promtool_check_config() -> None:
    promtool("check", "config", "prometheus.yml")


def markdown_anchors(path: Path) -> set[str]:
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


REQUIRED_ALERTS = {
    "EcomWorkerDown",
    "EcomConsumerLagGrowing",
    "EcomDeadLetterRateHigh",
    "EcomNoOutputWhileInputFlows",
    "EcomModelAucDrop",
    "EcomModelCalibrationDrift",
    "EcomModelGated",
    "EcomCampaignPacingOffTarget",
}


def test_alerts_are_complete_and_have_runbooks() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    (down,) = [r for r in rules if r["alert"] == "EcomWorkerDown"]
    assert re.fullmatch(r'up\{job="ecom-stream"\}\s*==\s*0', down["expr"].strip())
    anchors = markdown_anchors(OPERATIONS_DOC)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys()
        doc, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert (ROOT / doc).resolve() == OPERATIONS_DOC.resolve()
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {doc}"
        assert re.fullmatch(r"\d+[smh]", rule["for"]), f"{rule['alert']} needs a `for`"


def test_every_alert_has_firing_and_quiet_cases() -> None:
    tests = load_yaml(PROM / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        assert case["input_series"], case["name"]
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a non-firing test"


# --------------------------------------------------------------------------------------
# Every metric name used by alerts and the dashboard is exported by streams/metrics.py
# --------------------------------------------------------------------------------------

FAMILY_SAMPLES: dict[str, Callable[[str], set[str]]] = {
    "counter": lambda n: {f"{n}_total", f"{n}_created"},
    "gauge": lambda n: {n},
    "histogram": lambda n: {f"{n}_bucket", f"{n}_sum", f"{n}_count", f"{n}_created"},
    "summary": lambda n: {n, f"{n}_sum", f"{n}_count", f"{n}_created"},
    "info": lambda n: {f"{n}_info"},
    "stateset": lambda n: {n},
    "gaugehistogram": lambda n: {f"{n}_bucket", f"{n}_gsum", f"{n}_gcount"},
    "unknown": lambda n: {n},
}


def exported_names() -> set[str]:
    """Sample names a worker exposes: from each family's type, since a labelled family
    exposes no sample until a child exists, plus the samples already present."""
    names = {"up"}
    for family in Metrics().registry.collect():
        names |= FAMILY_SAMPLES[family.type](family.name)
        names |= {s.name for s in family.samples}
    return names


def test_alert_metric_names_are_exported() -> None:
    exported = exported_names()
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']}: unknown metrics {sorted(used - exported)}"
    for case in load_yaml(PROM / "alerts_test.yml")["tests"]:
        for series in case["input_series"]:
            name = metric_names(series["series"])
            assert name <= exported, f"{case['name']}: unknown input series {name}"


def test_dashboard_metric_names_are_exported() -> None:
    dashboard = load_dashboard()
    exported = exported_names()
    used_all: set[str] = set()
    for where, expr in dashboard_queries(dashboard):
        used = metric_names(expr)
        assert used, f"{where}: {expr}"
        assert used <= exported, f"{where}: unknown metrics {sorted(used - exported)}"
        used_all |= used
    required = {
        "ecom_events_in_total",
        "ecom_events_out_total",
        "ecom_consumer_lag",
        "ecom_processing_latency_seconds_bucket",
        "ecom_dead_letters_total",
        "ecom_model_auc",
        "ecom_model_logloss",
        "ecom_model_calibration",
        "ecom_bid_multiplier_bucket",
        "ecom_pacing_factor",
        "ecom_campaign_spend_ratio",
        "ecom_recommendations_emitted_total",
        "ecom_recommendation_coverage",
    }
    assert required <= used_all, f"dashboard lacks {sorted(required - used_all)}"


def test_dashboard_structure() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "ecom-stream"
    panels = list(walk_dicts(dashboard["panels"]))
    panels = [p for p in panels if "gridPos" in p]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"], p["title"]
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
    exprs = dashboard_exprs()
    for q in ("0.5", "0.95", "0.99"):
        assert any(
            re.search(rf"histogram_quantile\({q},.*ecom_processing_latency_seconds_bucket", e)
            for e in exprs
        ), f"latency p{q} panel"
    assert any("by (reason)" in e and "ecom_dead_letters_total" in e for e in exprs)
    assert any(p["type"] == "heatmap" for p in panels), "bid multiplier distribution"


# --------------------------------------------------------------------------------------
# scripts/ensure-prometheus.sh
# --------------------------------------------------------------------------------------


def test_ensure_prometheus_script() -> None:
    assert os.access(ENSURE_PROMETHEUS, os.X_OK), "scripts/ensure-prometheus.sh not executable"
    syntax = run(["bash", "-n", str(ENSURE_PROMETHEUS)])
    assert syntax.returncode == 0, syntax.stderr
    require_tool("promtool", PROMTOOL_HINT)
    # With promtool present the script is a quiet no-op (no apt-get at all).
    result = run(["bash", str(ENSURE_PROMETHEUS)], timeout=30)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
