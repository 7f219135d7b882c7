"""Kubernetes manifests under k8s/: the resource files, the base and every overlay.

* Kubernetes objects are validated with `kubernetes-validate` (JSON schemas shipped in
  the wheel), on the resource files and on every kustomization rendered by the small
  renderer in deploy_support (`kubectl kustomize`/`kustomize` are used for a
  cross-check only when installed).
* Semantic checks of the rendered objects: the worker StatefulSet, Services,
  ServiceMonitor, HPA, PodDisruptionBudget, NetworkPolicy, the topic-init Job, and
  that the pod environment is a configuration streams.settings.Settings accepts.
* The dev and prod overlays.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import (
    CLUSTER_SCOPED_KINDS,
    JOB,
    K8S,
    KNOWN_ENV,
    WEB_PORT,
    Obj,
    Rendered,
    containers_of,
    load_yaml,
    load_yaml_docs,
    render,
    run,
)

from streams.settings import ENV_NAMES, Settings, SettingsError

KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/prod"]
# Oldest Kubernetes minor the manifests promise to support, and the newest schema set
# shipped with kubernetes-validate.
K8S_VERSIONS = sorted({"1.29.0", kubernetes_validate.latest_version()})
SECRET_ENV = {ENV_NAMES["sasl_password"], ENV_NAMES["ssl_key_password"]}


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
    secret = {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    if worker_env(out).get("ECOM_PSEUDONYMIZE") == "1":  # prod: the key is in the Secret
        secret["ECOM_PSEUDONYM_KEY"] = "k1:" + "5e" * 32
    Settings.from_env(worker_env(out, secret))


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
    key = "k1:" + "5e" * 32  # the pseudonym key (issue 21) comes from the Secret too
    creds = {"KAFKA_SASL_USERNAME": "svc-ecom", "KAFKA_SASL_PASSWORD": "s3cret",
             "ECOM_PSEUDONYM_KEY": key}  # fmt: skip
    settings = Settings.from_env(worker_env(out, creds))
    assert settings.profile == "prod" and settings.security_protocol == "SASL_SSL"
    assert settings.pseudonymize == 1
    assert "s3cret" not in repr(settings) and "5e5e" not in repr(settings)
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
