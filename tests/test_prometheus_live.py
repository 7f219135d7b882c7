"""Metrics checked by the real tools against a live worker: `promtool check metrics`
on its exposition, a real Prometheus (with our alert rules) scraping it, and the
dashboard's queries resolved against what the worker really exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from deploy_support import alert_exprs, dashboard_exprs, metric_names
from kafka_harness import WorkerProcess, produce, wait_for
from live_support import campaign_records, raw_records, records, setup_topics, stream

from backtest.synthetic import malformed_inputs
from streams.broker import free_port, terminate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    # Installed by `make test` (scripts/ensure-prometheus.sh): missing means broken setup.
    assert path, f"{name} not found: run scripts/ensure-prometheus.sh"
    return path


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _exported_families(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split()[0])
    return names


def test_real_prometheus_scrapes_the_worker(broker, fast_worker_env, tmp_path):
    env = fast_worker_env
    settings = setup_topics(env)
    wport = int(env["ECOM_WEB_PORT"])
    base = f"http://127.0.0.1:{wport}"
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, campaign_records(settings))
        produce(
            broker.bootstrap, records(stream(n_users=100, duration_s=3 * 3600, seed=5), settings)
        )
        produce(
            broker.bootstrap, raw_records([(t, raw) for t, raw, _ in malformed_inputs()], settings)
        )
        wait_for(broker.bootstrap, settings.topic_dead_letter, lambda rs: len(rs) >= 5, 60)
        exposition = worker.wait_http(f"{base}/metrics").decode()

        # 1. promtool's own linter on the live exposition.
        check = subprocess.run([_tool("promtool"), "check", "metrics"], input=exposition,
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr

        # 2. The dashboard and the alerts name only metrics the worker really exports.
        exported = _exported_families(exposition)
        for expr in dashboard_exprs() + alert_exprs():
            for name in metric_names(expr) - {"up"}:
                family = (
                    name.removesuffix("_total")
                    .removesuffix("_bucket")
                    .removesuffix("_count")
                    .removesuffix("_sum")
                    .removesuffix("_info")
                )
                assert name in exported or family in exported, f"{name} in {expr!r}"

        # 3. A real Prometheus scrapes it, with our rules loaded.
        pport = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n"
            "  - job_name: ecom-stream\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{wport}']}}]\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        prom = subprocess.Popen(
            [_tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{pport}"],
            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            expected = {
                'up{job="ecom-stream"}': None,
                "sum(ecom_events_in_total)": None,
                "sum(ecom_events_out_total)": None,
                "sum(ecom_dead_letters_total)": None,
                "sum(ecom_processing_latency_seconds_count)": None,
                "sum(ecom_event_time_lag_seconds_count)": None,
                "ecom_active_profiles": None,
                "sum(ecom_commits_total)": None,
                "ecom_model_examples": None,
                "ecom_worker_info": None,
            }
            deadline = time.monotonic() + 60
            missing = list(expected)
            while missing and time.monotonic() < deadline:
                time.sleep(1)
                try:
                    missing = [
                        q
                        for q in expected
                        if not any(float(r["value"][1]) > 0 for r in _query(pport, q))
                    ]
                except OSError:
                    continue
            assert not missing, f"no non-zero series for {missing}"
            rules = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{pport}/api/v1/rules", timeout=5).read()
            )
            loaded = [r["name"] for g in rules["data"]["groups"] for r in g["rules"]]
            assert len(loaded) >= 6 and all(
                r["health"] == "ok" for g in rules["data"]["groups"] for r in g["rules"]
            ), rules
        finally:
            terminate(prom, grace_s=10)
            log.close()
