"""``adapter.transport``: the bearer token read as kube-apiserver reads it, the push token."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import __main__ as adapter_cli
from adapter.transport import PushToken, bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer abc  ", "abc"),
        ("Bearer abc def", "abc"),  # Go's SplitN(auth, " ", 3): the token ends at a space
        ("Bearer  abc", None),  # two spaces: an empty token, as Go finds
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_push_token_compares_the_token_whatever_the_schemes_case() -> None:
    push_token = PushToken("abc")
    assert push_token.accepts("bearer abc")
    assert not push_token.accepts("Bearer abcd")
    assert not push_token.accepts("Bearer abc\udcff")  # bytes that were not UTF-8


@pytest.mark.parametrize("token", ["", "two words"])
def test_a_push_token_a_bearer_header_cannot_carry_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="push token"):
        PushToken(token)


def test_serve_refuses_such_a_token_file_in_one_line(tmp_path: Path) -> None:
    token_file = tmp_path / "push-token"
    token_file.write_text("two words\n")
    with pytest.raises(SystemExit, match=r"^inference-adapter: --push-token-file .*white space"):
        adapter_cli._push_token(token_file)
