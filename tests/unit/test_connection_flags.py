"""The connection bounds of ``serve`` (``adapter.serving``) and the push shedding flags
(``adapter.admission``): defaults, flags, validation."""

from __future__ import annotations

from adapter.__main__ import build_parser, server_config
from adapter.config import ServerConfig


def config_for(*flags: str) -> ServerConfig:
    return server_config(build_parser().parse_args(["serve", *flags]), {})


def test_defaults_bound_every_stall() -> None:
    limits = config_for().connections
    assert (
        limits.tls_handshake_timeout_seconds,
        limits.idle_timeout_seconds,
        limits.request_timeout_seconds,
        limits.write_timeout_seconds,
        limits.max_connections,
    ) == (10, 90, 60, 30, 4096)


def test_push_shedding_flags() -> None:
    push = config_for().push
    assert (push.max_inflight_pushes, push.max_pod_push_rate, push.log_pushes) == (64, 10, False)
    config = config_for(
        "--max-inflight-pushes=8", "--max-pod-push-rate=0.5", "--log-pushes", "--max-connections=9"
    )
    assert (config.push.max_inflight_pushes, config.push.max_pod_push_rate) == (8, 0.5)
    assert config.push.log_pushes
    assert config.connections.max_connections == 9
    assert config_for(
        "--max-inflight-pushes=0", "--max-pod-push-rate=0", "--max-connections=0"
    ).validate() == [
        "--max-connections must be at least 1",
        "--max-inflight-pushes must be at least 1",
        "--max-pod-push-rate must be positive",
    ]


def test_flags_take_go_durations_and_must_be_positive() -> None:
    config = config_for(
        "--tls-handshake-timeout=500ms",
        "--idle-timeout=1m30s",
        "--request-timeout=0s",
        "--write-timeout=0s",
    )
    assert config.connections.tls_handshake_timeout_seconds == 0.5
    assert config.connections.idle_timeout_seconds == 90
    assert config.validate() == [
        "--request-timeout must be positive",
        "--write-timeout must be positive",
    ]
