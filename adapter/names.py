"""Kubernetes name syntax checks: DNS-1123 labels and subdomains, label keys and values.

This is a pure core mirroring k8s.io/apimachinery/pkg/util/validation, so that what we accept
(in label selectors, object names, metric labels) is exactly what the API server accepts. It
must not import anything beyond the standard library and does no I/O.

Each check returns ``None`` for a valid value and otherwise a short human-readable message
(several problems are joined with ``"; "``). Checks never raise: callers decide whether a bad
name is an error, a 400 or a skipped item.

Lengths are counted in characters where Go counts bytes. The two only differ for non-ASCII
text, which every pattern here rejects anyway, so validity is always the same as upstream.

Patterns are matched with :func:`re.fullmatch`: ``$`` would also match before a trailing
newline and let ``"name\\n"`` through, which Go's ``$`` (without the ``m`` flag) does not.
"""

from __future__ import annotations

import re

__all__ = [
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "QUALIFIED_NAME_MAX_LENGTH",
    "dns1123_label_error",
    "dns1123_subdomain_error",
    "label_key_error",
    "label_value_error",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63

_DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + r")*")
_QUALIFIED_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile("(" + _QUALIFIED_NAME_FMT + ")?")

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character "
    "(e.g. 'example.com')"
)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName', 'my.name' or '123-abc')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character "
    "(e.g. 'MyValue', 'my_value' or '12345')"
)


def _max_length_message(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _join(problems: list[str]) -> str | None:
    return "; ".join(problems) if problems else None


def dns1123_label_error(value: str) -> str | None:
    """Check an RFC 1123 label (namespace and most object names): at most 63 characters.

    >>> dns1123_label_error("my-name") is None
    True
    >>> dns1123_label_error("my.name")
    'must not contain dots'
    """
    problems = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        problems.append(_max_length_message(DNS1123_LABEL_MAX_LENGTH))
    if _DNS1123_LABEL_RE.fullmatch(value) is None:
        # Same hint as upstream: a valid subdomain that is not a label can only differ by dots.
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value) is not None:
            problems.append("must not contain dots")
        else:
            problems.append(_DNS1123_LABEL_MSG)
    return _join(problems)


def dns1123_subdomain_error(value: str) -> str | None:
    """Check an RFC 1123 subdomain (dot-separated labels, at most 253 characters).

    >>> dns1123_subdomain_error("example.com") is None
    True
    """
    return _join(_subdomain_problems(value))


def _subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        problems.append(_max_length_message(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if _DNS1123_SUBDOMAIN_RE.fullmatch(value) is None:
        problems.append(_DNS1123_SUBDOMAIN_MSG)
    return problems


def label_key_error(key: str) -> str | None:
    """Check a label key, which Kubernetes calls a qualified name: ``[prefix/]name``.

    The optional prefix is a DNS-1123 subdomain; the name is 1-63 alphanumerics, ``-``, ``_``
    or ``.``, starting and ending with an alphanumeric.

    >>> label_key_error("example.com/tier") is None
    True
    >>> label_key_error("/tier")
    'prefix part must be non-empty'
    """
    parts = key.split("/")
    problems = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems.extend("prefix part " + p for p in _subdomain_problems(prefix))
    else:
        return (
            "a qualified name "
            + _QUALIFIED_NAME_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        )
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        problems.append("name part " + _max_length_message(QUALIFIED_NAME_MAX_LENGTH))
    if _QUALIFIED_NAME_RE.fullmatch(name) is None:
        problems.append("name part " + _QUALIFIED_NAME_MSG)
    return _join(problems)


def label_value_error(value: str) -> str | None:
    """Check a label value: empty, or 1-63 alphanumerics, ``-``, ``_`` or ``.`` framed by
    alphanumerics.

    >>> label_value_error("") is None
    True
    >>> label_value_error("-x") is not None
    True
    """
    problems = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        problems.append(_max_length_message(LABEL_VALUE_MAX_LENGTH))
    if _LABEL_VALUE_RE.fullmatch(value) is None:
        problems.append(_LABEL_VALUE_MSG)
    return _join(problems)
