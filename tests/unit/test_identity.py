"""Tests for adapter.client.identity: labels from a flag or the downward API file, pod names."""

import pytest

from adapter.client import identity

# --- parse_labels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("", {}),
        ("  ", {}),
        ("app=model", {"app": "model"}),
        ("app=model,tier=gpu", {"app": "model", "tier": "gpu"}),
        ("app=model, tier=gpu", {"app": "model", "tier": "gpu"}),
        (" app = model ", {"app": "model"}),
        (",,app=model,,", {"app": "model"}),
        ("app=", {"app": ""}),
        ("example.com/tier=gpu", {"example.com/tier": "gpu"}),
        ("app.kubernetes.io/name=model-server", {"app.kubernetes.io/name": "model-server"}),
        ("a_b.c-d=E_f.g-1", {"a_b.c-d": "E_f.g-1"}),
        ("k=" + "v" * 63, {"k": "v" * 63}),
    ],
)
def test_parse_labels(text, labels):
    assert identity.parse_labels(text) == labels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app", "invalid label 'app': use key=value"),
        ("app=model,tier", "invalid label 'tier': use key=value"),
        ("=model", "invalid label =model: name part must be non-empty"),
        ("a b=c", "invalid label a b=c: name part must consist of alphanumeric characters"),
        ("/tier=gpu", "prefix part must be non-empty"),
        ("Example.com/tier=gpu", "invalid label Example.com/tier=gpu"),
        ("a=b=c", "invalid label a=b=c: a valid label must be an empty string"),
        ("app=-model", "invalid label app=-model"),
        ("app=model-", "invalid label app=model-"),
        ("app=a b", "invalid label app=a b"),
        ("app=model;tier=gpu", "invalid label app=model;tier=gpu"),
        ("k=" + "v" * 64, "must be no more than 63 characters"),
        ("k" * 64 + "=v", "must be no more than 63 characters"),
    ],
)
def test_parse_labels_invalid(text, message):
    with pytest.raises(ValueError, match="invalid label") as raised:
        identity.parse_labels(text)
    assert message in str(raised.value)


# --- parse_labels_file ------------------------------------------------------------------------

DOWNWARD_API_FILE = """\
app="model"
app.kubernetes.io/name="model-server"
pod-template-hash="5d8f7c9b4"
tier=""
"""


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        (
            DOWNWARD_API_FILE,
            {
                "app": "model",
                "app.kubernetes.io/name": "model-server",
                "pod-template-hash": "5d8f7c9b4",
                "tier": "",
            },
        ),
        ("", {}),
        ("\n\n", {}),
        ('app="model"', {"app": "model"}),  # no final newline
        ('app="model"\r\ntier="gpu"\r\n', {"app": "model", "tier": "gpu"}),
        ('\n  app="model"  \n\n', {"app": "model"}),
    ],
)
def test_parse_labels_file(text, labels):
    assert identity.parse_labels_file(text) == labels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app=model", "invalid line in labels file 'app=model': expected key=\"value\""),
        ('app="model', "invalid line in labels file 'app=\"model'"),
        ('app=model"', 'expected key="value"'),
        ('app="', 'expected key="value"'),
        ('"', 'expected key="value"'),
        ("app", 'expected key="value"'),
        ('app = "model"', 'expected key="value"'),
        ('app="model"\nbroken', "invalid line in labels file 'broken'"),
        ('="model"', "name part must be non-empty"),
        ('app="-model"', "invalid label app=-model"),
        # Escapes are decoded before the check, so the message shows the value itself.
        ('app="x\\"y"', 'invalid label app=x"y:'),
        ('app="x\\\\y"', "invalid label app=x\\y:"),
        ('app="\\\\"', "invalid label app=\\:"),
        ('app="a"b"', 'invalid label app=a"b:'),
        ('app="' + "v" * 64 + '"', "must be no more than 63 characters"),
    ],
)
def test_parse_labels_file_invalid(text, message):
    with pytest.raises(ValueError, match="invalid") as raised:
        identity.parse_labels_file(text)
    assert message in str(raised.value)


def test_parse_labels_file_quotes_long_lines_briefly():
    with pytest.raises(ValueError) as raised:
        identity.parse_labels_file("x" * 1000)
    assert len(str(raised.value)) < 200


# --- check_pod --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("default", "model-0"),
        ("ml", "model-5d8f7c9b4-x2x7k"),
        ("a", "a"),
        ("n" * 63, "p" * 253),
        ("ml", "model.v2.0"),
        ("0ns", "0"),
    ],
)
def test_check_pod_accepts(namespace, name):
    identity.check_pod(namespace, name)


@pytest.mark.parametrize(
    ("namespace", "name", "message"),
    [
        ("", "model-0", "invalid namespace ''"),
        ("Default", "model-0", "invalid namespace 'Default': a lowercase RFC 1123 label"),
        ("ml.team", "model-0", "invalid namespace 'ml.team': must not contain dots"),
        ("-ml", "model-0", "invalid namespace '-ml'"),
        ("n" * 64, "model-0", "must be no more than 63 characters"),
        ("ml", "", "invalid pod name ''"),
        ("ml", "Model-0", "invalid pod name 'Model-0': a lowercase RFC 1123 subdomain"),
        ("ml", "model_0", "invalid pod name 'model_0'"),
        ("ml", "model-", "invalid pod name 'model-'"),
        ("ml", "model..0", "invalid pod name 'model..0'"),
        ("ml", "p" * 254, "must be no more than 253 characters"),
    ],
)
def test_check_pod_rejects(namespace, name, message):
    with pytest.raises(ValueError, match="invalid") as raised:
        identity.check_pod(namespace, name)
    assert message in str(raised.value)


def test_a_label_given_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="'app' is given twice"):
        identity.parse_labels("app=a,app=b")
