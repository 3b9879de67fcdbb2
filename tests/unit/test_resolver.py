"""``adapter.resolver``: ``--resolve`` entries, fixed and DNS lookups; adapter URLs."""

from __future__ import annotations

import pytest

from adapter.client import parse_adapter_url
from adapter.resolver import DnsResolver, StaticResolver, is_address, parse_resolve
from model_server.__main__ import build_parser, config_from_args


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], {}),
        (["push.metrics.svc:10.0.0.7"], {"push.metrics.svc": ("10.0.0.7",)}),
        (
            ["push.metrics.svc:10.0.0.7,10.0.0.8", "other:[fd00::1],[fd00::2]"],
            {"push.metrics.svc": ("10.0.0.7", "10.0.0.8"), "other": ("fd00::1", "fd00::2")},
        ),
        # joined by commas, as an environment variable carries repeated values
        (
            ["a:10.0.0.1", "10.0.0.2", "b:10.0.0.3"],
            {"a": ("10.0.0.1", "10.0.0.2"), "b": ("10.0.0.3",)},
        ),
        (["a:10.0.0.1,10.0.0.2,b:[::1]"], {"a": ("10.0.0.1", "10.0.0.2"), "b": ("::1",)}),
        (["a:fd00::1,fd00::2"], {"a": ("fd00::1", "fd00::2")}),
        (["Push.Metrics.SVC.:10.0.0.7"], {"push.metrics.svc": ("10.0.0.7",)}),
        (["a: 10.0.0.1 , 10.0.0.2"], {"a": ("10.0.0.1", "10.0.0.2")}),
    ],
)
def test_parse_resolve(entries: list[str], expected: dict[str, tuple[str, ...]]) -> None:
    assert parse_resolve(entries) == expected


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["10.0.0.1"], "expected HOST:ADDR"),
        (["push.metrics.svc"], "expected HOST:ADDR"),
        ([":10.0.0.1"], "expected HOST:ADDR"),
        (["a:not-an-address"], "'not-an-address' is not an IP address"),
        (["a:[fd00::zz]"], "'[fd00::zz]' is not an IP address"),
        (["a:10.0.0.1", "a:10.0.0.2"], "a is given twice"),
        (["a:10.0.0.300"], "'10.0.0.300' is not an IP address"),
    ],
)
def test_parse_resolve_names_the_bad_entry(entries: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="invalid --resolve") as raised:
        parse_resolve(entries)
    assert message in str(raised.value)


async def test_static_addresses_first_then_dns() -> None:
    resolver = StaticResolver({"push.metrics.svc": ("10.0.0.8", "10.0.0.7", "10.0.0.8")})
    assert await resolver.resolve("PUSH.metrics.svc.", 6443) == ["10.0.0.7", "10.0.0.8"]
    assert await resolver.resolve("127.0.0.9", 6443) == ["127.0.0.9"]
    assert "127.0.0.1" in await resolver.resolve("localhost", 6443)


async def test_dns_gives_every_record_and_fails_with_oserror() -> None:
    assert await DnsResolver().resolve("fd00::1", 443) == ["fd00::1"]
    assert "127.0.0.1" in await DnsResolver().resolve("localhost", 443)
    with pytest.raises(OSError):
        await DnsResolver().resolve("no-such-adapter.invalid", 443)


def test_is_address() -> None:
    assert is_address("127.0.0.2") and is_address("::1")
    assert not is_address("adapter.metrics.svc") and not is_address("[::1]")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://adapter:6443", "TLS only"),
        ("https://", "expected https://HOST"),
        ("https://adapter:70000", "out of range"),
        ("https://adapter:6443/?x=1", "no query"),
        ("https://adapter..metrics.svc:6443", "'adapter..metrics.svc' is not a host name"),
        (f"https://{'a' * 64}.svc", "is not a host name"),
    ],
)
def test_adapter_urls_are_checked(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_adapter_url(url)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--resolve", "push:nowhere"], "invalid --resolve 'push:nowhere'"),
        (["--adapter-url", "http://adapter"], "adapter URL 'http://adapter'"),
        (["--adapter-url", "https://push..svc:6443"], "'push..svc' is not a host name"),
        (["--push-backlog-max-age", "0s"], "--push-backlog-max-age must be positive"),
    ],
)
def test_model_server_flags_are_checked(flags: list[str], message: str, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    args = build_parser({}).parse_args(
        ["--adapter-url", "https://push:6443", "--push-token-file", str(token), *flags]
    )
    with pytest.raises(ValueError, match=message):
        config_from_args(args)


def test_model_server_resolve_flag_and_environment_agree(tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    common = ["--adapter-url", "https://push:6443", "--push-token-file", str(token)]
    flags = build_parser({}).parse_args(
        [*common, "--resolve", "push:127.0.0.1,127.0.0.2", "--resolve", "x:[::1]"]
    )
    environment = build_parser({"MODEL_SERVER_RESOLVE": "push:127.0.0.1,127.0.0.2,x:[::1]"})
    expected = {"push": ("127.0.0.1", "127.0.0.2"), "x": ("::1",)}
    assert config_from_args(flags).push.adapter_addresses == expected
    assert config_from_args(environment.parse_args(common)).push.adapter_addresses == expected
