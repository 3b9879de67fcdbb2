"""Tests for adapter.names: the apimachinery name-syntax checks, valid and invalid by table."""

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import names

# --- DNS-1123 label -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "0",
        "ab",
        "a-b",
        "a--b",
        "0-9",
        "1234",
        "my-name",
        "kube-system",
        "a" * 63,
        "a" + "-" * 61 + "b",
    ],
)
def test_dns1123_label_accepts(value):
    assert names.dns1123_label_error(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-",
        "-a",
        "a-",
        "A",
        "aB",
        "a_b",
        "a b",
        " a",
        "a\n",
        "\na",
        "a/b",
        "é",
        "a" * 64,
    ],
)
def test_dns1123_label_rejects(value):
    assert names.dns1123_label_error(value) is not None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a.b", "must not contain dots"),
        ("a" * 64, "must be no more than 63 characters"),
        ("a_b", "RFC 1123 label"),
    ],
)
def test_dns1123_label_message_names_the_problem(value, message):
    assert message in names.dns1123_label_error(value)


def test_dns1123_label_too_long_and_bad_reports_both():
    error = names.dns1123_label_error("A" * 64)
    assert "no more than 63" in error
    assert "RFC 1123 label" in error


# --- DNS-1123 subdomain ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "a.b",
        "example.com",
        "0.1.2.domain",
        "this-is-a-dns.domain.com",
        "a-b.c-d",
        "a" * 63 + "." + "b" * 63,
        ("a" * 63 + ".") * 3 + "b" * 61,  # exactly 253
        "a" * 253,
    ],
)
def test_dns1123_subdomain_accepts(value):
    assert names.dns1123_subdomain_error(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a.-b",
        "a-.b",
        "Example.com",
        "a_b.com",
        "a.b\n",
        "a" * 254,
        ("a" * 63 + ".") * 3 + "b" * 62,  # 254
    ],
)
def test_dns1123_subdomain_rejects(value):
    assert names.dns1123_subdomain_error(value) is not None


def test_dns1123_subdomain_length_boundary_message():
    assert names.dns1123_subdomain_error("a" * 254) == "must be no more than 253 characters"


# --- label keys (qualified names) -----------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "A",
        "x",
        "1foo",
        "1234",
        "in",
        "notin",
        "MyName",
        "my.name",
        "my_name",
        "123-abc",
        "a-_.b",
        "example.com/tier",
        "this-is-a-dns.domain.com/key-with-dash",
        "0.1.2.domain/99",
        "k8s.io/Name_1",
        "a" * 63,
        "p/" + "a" * 63,
        "a" * 253 + "/" + "b" * 63,
    ],
)
def test_label_key_accepts(key):
    assert names.label_key_error(key) is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/",
        "/a",
        "a/",
        "a/b/c",
        "-a",
        "a-",
        "_a",
        "a.",
        "a b",
        "a\n",
        "example.com/tier\n",
        "Example.com/tier",
        "example_com/tier",
        "a" * 64,
        "p/" + "a" * 64,
        "a" * 254 + "/b",
        "a=b",
        "a!",
        "ключ",
    ],
)
def test_label_key_rejects(key):
    assert names.label_key_error(key) is not None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("/a", "prefix part must be non-empty"),
        ("a/", "name part must be non-empty"),
        ("Bad/a", "prefix part a lowercase RFC 1123 subdomain"),
        ("a" * 254 + "/b", "prefix part must be no more than 253 characters"),
        ("a" * 64, "name part must be no more than 63 characters"),
        ("-a", "name part must consist of alphanumeric"),
        ("a/b/c", "a qualified name must consist"),
    ],
)
def test_label_key_message_names_the_part(key, fragment):
    assert fragment in names.label_key_error(key)


def test_label_key_reports_prefix_and_name_problems_together():
    problems = names.label_key_error("/-").split("; ")
    assert len(problems) == 2
    assert problems[0] == "prefix part must be non-empty"
    assert problems[1].startswith("name part must consist of alphanumeric")


# --- label values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a",
        "A",
        "0",
        "in",
        "MyValue",
        "my_value",
        "12345",
        "10.10.100.1",
        "tick.tack.clock",
        "a-_.b",
        "a" * 63,
    ],
)
def test_label_value_accepts(value):
    assert names.label_value_error(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "-",
        "-1",
        "+1",
        "_a",
        "a_",
        ".a",
        "a.",
        "a b",
        "a/b",
        "a\n",
        "\n",
        " ",
        "a||y",
        "a" * 64,
        "ü",
    ],
)
def test_label_value_rejects(value):
    assert names.label_value_error(value) is not None


def test_label_value_length_boundary_message():
    assert names.label_value_error("a" * 64) == "must be no more than 63 characters"


# --- properties -----------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@given(st.text(alphabet=_ALNUM + "-_.", min_size=1, max_size=70))
def test_label_value_agrees_with_its_definition(value):
    """Checks the regex-free definition: length, alphabet and alphanumeric ends."""
    expected_valid = len(value) <= 63 and value[0] in _ALNUM and value[-1] in _ALNUM
    assert (names.label_value_error(value) is None) == expected_valid


@given(st.text(max_size=80))
def test_every_check_returns_none_or_a_one_line_message(text):
    for check in (
        names.dns1123_label_error,
        names.dns1123_subdomain_error,
        names.label_key_error,
        names.label_value_error,
    ):
        result = check(text)
        assert result is None or (isinstance(result, str) and result and "\n" not in result)


@given(st.sampled_from(["a", "abc", "example.com", "my-name"]), st.sampled_from(["\n", "\r\n"]))
def test_trailing_newline_is_rejected_everywhere(valid, newline):
    assert names.dns1123_label_error(valid.replace(".", "-") + newline) is not None
    assert names.dns1123_subdomain_error(valid + newline) is not None
    assert names.label_key_error(valid + newline) is not None
    assert names.label_value_error(valid + newline) is not None


def test_docstring_examples():
    failed, attempted = doctest.testmod(names)
    assert (failed, attempted > 0) == (0, True)
