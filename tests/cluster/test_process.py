"""The real ``inference-adapter serve --kubeconfig`` process against the kube-apiserver double:
start-up preflight, and the real ``kubectl get --raw`` with a client certificate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter import incluster
from adapter.config import ClusterConfig, ServerConfig
from adapter.kube import KubeClient
from adapter.store import Store
from localcluster import processes
from tests.cluster.conftest import CUSTOM, ClusterPki
from tests.cluster.pki import Issued
from tests.conftest import free_port
from tests.integration.conftest import stop_process
from tests.kubeapi import KubeApiDouble

pytestmark = pytest.mark.integration

KUBECTL = str(Path(sys.executable).parent / "kubectl")


@pytest.mark.parametrize(
    ("verb", "group", "resource", "binding"),
    [
        ("get", "", "configmaps", "kind: RoleBinding"),
        ("create", "authorization.k8s.io", "subjectaccessreviews", "system:auth-delegator"),
        ("watch", "apps", "deployments", "inference-metrics-adapter:resource-reader"),
    ],
)
async def test_preflight_names_the_missing_binding(
    kubeapi: KubeApiDouble, tmp_path: Path, verb: str, group: str, resource: str, binding: str
) -> None:
    kubeapi.deny_self(verb, group, resource)
    kubeconfig = kubeapi.write_kubeconfig(tmp_path / "kubeconfig")
    config = ServerConfig(cluster=ClusterConfig(enabled=True, kubeconfig=kubeconfig))
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        with pytest.raises(incluster.StartupError) as raised:
            await incluster.prepare(config, client, Store(config.store), None)
    finally:
        client.close()
    message = str(raised.value)
    assert "lacks 1 permission(s)" in message
    assert binding in message
    assert "kind: ServiceAccount\n    name: inference-metrics-adapter\n    namespace: metrics" in (
        message
    )


def _kubectl_config(path: Path, server: str, ca: Path, user: Issued) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "a", "cluster": {"server": server, "certificate-authority": str(ca)}}
                ],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "client-certificate": str(user.cert_file),
                            "client-key": str(user.key_file),
                        },
                    }
                ],
                "contexts": [{"name": "a", "context": {"cluster": "a", "user": "u"}}],
                "current-context": "a",
            }
        )
    )
    return path


def _start(tmp_path: Path, kubeconfig: Path, *extra: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    cert_dir = tmp_path / "certs"
    log = (tmp_path / "adapter.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapter",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(port),
            "--cert-dir",
            str(cert_dir),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    return process, f"https://127.0.0.1:{port}", cert_dir


def test_kubectl_get_raw_with_a_client_certificate(
    kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> None:
    kubeapi.grant("carol")
    kubeconfig = kubeapi.write_kubeconfig(tmp_path / "adapter-kubeconfig")
    process, url, cert_dir = _start(tmp_path, kubeconfig)
    try:
        processes.wait_until_answering(f"{url}/healthz", process, ca_file=cert_dir / "ca.crt")
        config = _kubectl_config(
            tmp_path / "kubectl-config", url, cert_dir / "ca.crt", cluster_pki.carol
        )
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), "get", "--raw", CUSTOM],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["kind"] == "APIResourceList"
        assert kubeapi.access_reviews[-1]["user"] == "carol"

        kubeapi.revoke("carol")
        path = f"{CUSTOM}/namespaces/ml/pods/*/inference_queue_depth"
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), "get", "--raw", path],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode != 0
        assert (
            'Error from server (Forbidden): pods.custom.metrics.k8s.io "*" is forbidden: User'
            ' "carol" cannot get resource "pods/inference_queue_depth"' in result.stderr
        )
    finally:
        stop_process(process)
    log = (tmp_path / "adapter.log").read_text()
    assert "cluster view synced" in log


def test_a_missing_permission_stops_the_process(kubeapi: KubeApiDouble, tmp_path: Path) -> None:
    kubeapi.deny_self("list", "", "pods")
    kubeconfig = kubeapi.write_kubeconfig(tmp_path / "adapter-kubeconfig")
    process, _, _ = _start(tmp_path, kubeconfig)
    assert process.wait(timeout=30) == 1
    log = (tmp_path / "adapter.log").read_text()
    assert "lacks 1 permission(s) the adapter needs:\n  - list pods" in log
    assert "kubectl create clusterrolebinding inference-metrics-adapter:resource-reader" in log
