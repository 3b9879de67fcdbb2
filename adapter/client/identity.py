"""Who this pod is: from flags, or the Kubernetes downward API (env and a labels file).

Pure parsing; ``model_server.__main__`` reads the environment and files and passes text in.
"""

from __future__ import annotations

from adapter import names


def parse_labels(text: str) -> dict[str, str]:
    """``app=model,tier=gpu`` into a dict; ValueError naming a bad label.

    >>> parse_labels("app=model, tier=gpu")
    {'app': 'model', 'tier': 'gpu'}
    """
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"invalid label {item!r}: use key=value")
        key, value = key.strip(), value.strip()
        _check(key, value)
        if key in labels:
            raise ValueError(f"label {key!r} is given twice")
        labels[key] = value
    return labels


def parse_labels_file(text: str) -> dict[str, str]:
    """The downward API's labels file: one ``key="value"`` per line (values quoted, escaped)."""
    labels: dict[str, str] = {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        key, equals, quoted = line.partition("=")
        if not equals or len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
            raise ValueError(f'invalid line in labels file {line[:80]!r}: expected key="value"')
        value = quoted[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        _check(key, value)
        labels[key] = value
    return labels


def _check(key: str, value: str) -> None:
    problem = names.label_key_error(key) or names.label_value_error(value)
    if problem:
        raise ValueError(f"invalid label {key}={value}: {problem}")


def check_pod(namespace: str, name: str) -> None:
    """ValueError unless ``namespace`` and ``name`` are valid Kubernetes names."""
    problem = names.dns1123_label_error(namespace)
    if problem:
        raise ValueError(f"invalid namespace {namespace!r}: {problem}")
    problem = names.dns1123_subdomain_error(name)
    if problem:
        raise ValueError(f"invalid pod name {name!r}: {problem}")
