"""Which mode ``serve`` picks, and how the cluster flags become configuration."""

from __future__ import annotations

from pathlib import Path

from adapter.__main__ import build_parser, server_config
from adapter.incluster import running_in_pod


def config_for(*flags: str, environ: dict[str, str] | None = None):
    return server_config(build_parser().parse_args(["serve", *flags]), environ or {})


def test_standalone_stays_the_default_outside_a_cluster() -> None:
    assert not config_for().cluster.enabled


def test_kubeconfig_or_a_pod_turns_cluster_mode_on(tmp_path: Path) -> None:
    assert config_for("--kubeconfig", str(tmp_path / "kc")).cluster.enabled
    (tmp_path / "token").write_text("t")
    in_pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert running_in_pod(in_pod, tmp_path)
    assert not running_in_pod({}, tmp_path)
    assert not running_in_pod(in_pod, tmp_path / "nowhere")
    assert config_for("--mode", "in-cluster").cluster.enabled
    assert not config_for("--mode", "standalone", "--kubeconfig", "x").cluster.enabled


def test_cluster_flags() -> None:
    cluster = config_for(
        "--mode=in-cluster",
        "--authorization-always-allow-paths=/healthz,/metrics",
        "--authentication-token-webhook-cache-ttl=30s",
        "--authorization-webhook-cache-authorized-ttl=1m",
        "--authorization-webhook-cache-unauthorized-ttl=500ms",
        "--requestheader-allowed-names=front-proxy-client,aggregator",
        "--requestheader-username-headers=X-Remote-User",
        "--push-token-audience=metrics",
        "--allow-shared-push-token",
        "--skip-preflight",
    ).cluster
    assert cluster.always_allow_paths == ("/healthz", "/metrics")
    assert (
        cluster.token_cache_ttl_seconds,
        cluster.authorized_ttl_seconds,
        cluster.unauthorized_ttl_seconds,
    ) == (30, 60, 0.5)
    assert cluster.requestheader_allowed_names == ("front-proxy-client", "aggregator")
    assert cluster.requestheader_group_headers is None
    assert cluster.push_token_audience == "metrics"
    assert cluster.allow_shared_push_token and not cluster.preflight


def test_cluster_validation_reports_every_problem(tmp_path: Path) -> None:
    config = config_for(
        "--kubeconfig",
        str(tmp_path / "missing"),
        "--authorization-always-allow-paths=healthz",
        "--push-token-audience=",
    )
    problems = config.validate()
    assert any("--kubeconfig" in p for p in problems)
    assert any("must start with /" in p for p in problems)
    assert any("--push-token-audience" in p for p in problems)
