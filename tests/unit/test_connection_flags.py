"""The connection bounds of ``serve`` (``adapter.serving``): defaults, flags, validation."""

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
    ) == (10, 90, 60)


def test_flags_take_go_durations_and_must_be_positive() -> None:
    config = config_for(
        "--tls-handshake-timeout=500ms", "--idle-timeout=1m30s", "--request-timeout=0s"
    )
    assert config.connections.tls_handshake_timeout_seconds == 0.5
    assert config.connections.idle_timeout_seconds == 90
    assert config.validate() == ["--request-timeout must be positive"]
