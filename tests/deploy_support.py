"""Shared helpers of the deployment tests (tests/test_deploy_*.py).

* Paths of the deployment artefacts and constants they share (web port, scrape job,
  environment variables the worker reads).
* YAML loading, `run` (a subprocess with captured output) and `require_tool` (fails,
  never skips, when a tool is missing).
* A small kustomize renderer (`render`, `Resource`, `Rendered`, `strategic_merge`): the
  subset of kustomize the manifests under k8s/ use.
* PromQL helpers for other tests to import: `metric_names(expr)`, `dashboard_exprs()`
  (every PromQL expression of deploy/grafana/dashboards/ecom-stream.json) and
  `alert_exprs()` (every `expr` of deploy/prometheus/alerts.yml).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from streams.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ecom-stream.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
ENSURE_PROMETHEUS = ROOT / "scripts" / "ensure-prometheus.sh"

WEB_PORT = 6066
JOB = "ecom-stream"
KNOWN_ENV = set(ENV_NAMES.values())

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


# --------------------------------------------------------------------------------------
# Prometheus alerts and the Grafana dashboard: the PromQL they contain.
# --------------------------------------------------------------------------------------


def alert_rules() -> list[Obj]:
    return [r for g in load_yaml(PROM / "alerts.yml")["groups"] for r in g["rules"] if "alert" in r]


def alert_exprs() -> list[str]:
    """Every `expr` in deploy/prometheus/alerts.yml, in file order."""
    groups = load_yaml(PROM / "alerts.yml")["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"] if "expr" in rule]


def load_dashboard() -> Obj:
    dashboard: Obj = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


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


def dashboard_queries(dashboard: Obj) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target, annotation and query variable."""
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


def dashboard_exprs() -> list[str]:
    """Every PromQL expression in deploy/grafana/dashboards/ecom-stream.json: panel
    targets, annotations and the series selectors of `label_values(...)` variables."""
    return [expr for _, expr in dashboard_queries(load_dashboard())]
