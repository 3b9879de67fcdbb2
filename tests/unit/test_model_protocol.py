"""Tests for model_server.protocol: the KServe v2 subset's decoding, metadata and encoding.

Every client mistake must come back as a ``ProtocolError`` with a 4xx status and a message naming
the problem, never as another exception (which the server would answer with a 500).
"""

import json
from typing import Any

import numpy as np
import pytest

from model_server import model, protocol
from model_server.protocol import InferRequest, ProtocolError

WIDTH = model.INPUT_SIZE
FP32_MAX = float(np.finfo(np.float32).max)


def tensor(**fields: Any) -> dict[str, Any]:
    """A valid one-row input tensor, with ``fields`` replaced."""
    return {
        "name": "input",
        "datatype": "FP32",
        "shape": [1, WIDTH],
        "data": [0.5] * WIDTH,
    } | fields


def infer_body(*tensors: dict[str, Any], **document: Any) -> bytes:
    return json.dumps({"inputs": list(tensors or [tensor()])} | document).encode()


def row(first: Any, rest: Any = 0.0) -> list[Any]:
    return [first] + [rest] * (WIDTH - 1)


# --- decode_infer: bad bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Not JSON, or JSON of the wrong kind.
        (b"", "not valid UTF-8 JSON"),
        (b"{", "not valid UTF-8 JSON"),
        (b"inputs=1", "not valid UTF-8 JSON"),
        ('{"id": "\xe9"}'.encode("latin-1"), "not valid UTF-8 JSON"),
        (b'{"inputs": NaN}', "NaN is not a number"),
        (b'{"inputs": [Infinity]}', "Infinity is not a number"),
        (b'{"inputs": -Infinity}', "Infinity is not a number"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
        (b"[]", "must be a JSON object"),
        (b'"inputs"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"42", "must be a JSON object"),
        # The inputs list.
        (b"{}", "inputs must be an array of exactly one tensor 'input'"),
        (b'{"inputs": null}', "exactly one tensor"),
        (b'{"inputs": {}}', "exactly one tensor"),
        (b'{"inputs": []}', "exactly one tensor"),
        (b'{"inputs": [[]]}', "exactly one tensor"),
        (b'{"inputs": ["input"]}', "exactly one tensor"),
        (infer_body(tensor(), tensor()), "exactly one tensor"),
        # The tensor's name, datatype and shape.
        (infer_body(tensor(name="x")), "unknown input 'x': the input is 'input'"),
        (infer_body(tensor(name="INPUT")), "unknown input 'INPUT'"),
        (infer_body({"datatype": "FP32", "shape": [1, WIDTH]}), "unknown input None"),
        (infer_body(tensor(datatype="INT32")), "datatype must be FP32, not 'INT32'"),
        (infer_body(tensor(datatype="FP16")), "datatype must be FP32, not 'FP16'"),
        (infer_body(tensor(datatype="FP64")), "datatype must be FP32, not 'FP64'"),
        (infer_body(tensor(datatype="fp32")), "datatype must be FP32, not 'fp32'"),
        (infer_body(tensor(datatype=None)), "datatype must be FP32, not None"),
        (infer_body(tensor(shape=[WIDTH])), f"shape must be [n, {WIDTH}]"),
        (infer_body(tensor(shape=[1, 1, WIDTH])), "not [1, 1, 64]"),
        (infer_body(tensor(shape=[])), "not []"),
        (infer_body(tensor(shape=None)), "not null"),
        (infer_body(tensor(shape="1,64")), 'not "1,64"'),
        (infer_body(tensor(shape=[1, 32], data=[0.5] * 32)), "not [1, 32]"),
        (infer_body(tensor(shape=[1, 65], data=[0.5] * 65)), "not [1, 65]"),
        (infer_body(tensor(shape=[64, 1], data=[0.5] * 64)), "not [64, 1]"),
        (infer_body(tensor(shape=[0, WIDTH], data=[])), "1 <= n <= 64, not [0, 64]"),
        (infer_body(tensor(shape=[-1, WIDTH])), "not [-1, 64]"),
        (infer_body(tensor(shape=[65, WIDTH], data=[0.5] * 65 * WIDTH)), "not [65, 64]"),
        (infer_body(tensor(shape=[10**30, WIDTH])), "1 <= n <= 64"),
        (infer_body(tensor(shape=[1.0, WIDTH])), "not [1.0, 64]"),
        (infer_body(tensor(shape=[True, WIDTH])), "not [true, 64]"),
        (infer_body(tensor(shape=["1", WIDTH])), 'not ["1", 64]'),
        # The data.
        (
            infer_body(tensor(data=[0.5] * (WIDTH - 1))),
            "data has 63 values; shape [1, 64] needs 64",
        ),
        (infer_body(tensor(data=[0.5] * (WIDTH + 1))), "data has 65 values"),
        (infer_body(tensor(shape=[2, WIDTH])), "data has 64 values; shape [2, 64] needs 128"),
        (infer_body(tensor(data=[])), "data has 0 values"),
        (infer_body(tensor(data=None)), "data must be an array of numbers"),
        (infer_body(tensor(data=0.5)), "data must be an array of numbers"),
        (infer_body(tensor(data={"0": 0.5})), "data must be an array of numbers"),
        (infer_body(tensor(data="0.5," * WIDTH)), "data must be an array of numbers"),
        (infer_body(tensor(data=row("0.5"))), "data must hold only numbers"),
        (infer_body(tensor(data=row(None))), "data must hold only numbers"),
        (infer_body(tensor(data=row({}))), "data must hold only numbers"),
        (infer_body(tensor(data=row(True))), "data must hold only numbers"),
        (infer_body(tensor(data=row(False, False))), "data must hold only numbers"),
        (infer_body(tensor(data=[[[[[row(0.5)]]]]])), "nested too deeply"),
        (infer_body(tensor(data=row(1e39))), "finite FP32 values"),
        (infer_body(tensor(data=row(-1e39))), "finite FP32 values"),
        (infer_body(tensor(data=row(FP32_MAX * 1.0000001))), "finite FP32 values"),
        (infer_body(tensor(data=row(1e308, 1e308))), "finite FP32 values"),
        (infer_body(tensor(data=row(10**400))), "out of range"),
        (infer_body(tensor(data=row(-(10**400)))), "out of range"),
        (b'{"inputs": [{"data": [1' + b"0" * 5000 + b"]}]}", "not valid UTF-8 JSON"),
        # The request id.
        (infer_body(id=5), "id must be a string"),
        (infer_body(id=["a"]), "id must be a string"),
        (infer_body(id=True), "id must be a string"),
    ],
)
def test_decode_rejects_with_400_naming_the_problem(body, message):
    with pytest.raises(ProtocolError) as raised:
        protocol.decode_infer(body)
    assert raised.value.status == 400
    assert message in raised.value.message
    assert raised.value.body() == {"error": raised.value.message}
    assert len(raised.value.message) < 300
    assert "\n" not in raised.value.message


# --- decode_infer: good bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "shape", "expected"),
    [
        (row(0.5), [1, WIDTH], np.array([row(0.5)])),
        (row(1, 2), [1, WIDTH], np.array([row(1.0, 2.0)])),  # integers are numbers too
        ([float(i) for i in range(2 * WIDTH)], [2, WIDTH], np.arange(2 * WIDTH).reshape(2, WIDTH)),
        # Nested data is read in row-major order, however it is nested.
        ([row(1.0), row(2.0)], [2, WIDTH], np.array([row(1.0), row(2.0)])),
        ([[row(1.0)], [row(2.0)]], [2, WIDTH], np.array([row(1.0), row(2.0)])),
        ([[[[row(3.0)]]]], [1, WIDTH], np.array([row(3.0)])),
        ([row(1.0)[:10], row(1.0)[10:]], [1, WIDTH], np.array([row(1.0)])),
        (row(FP32_MAX, -FP32_MAX), [1, WIDTH], np.array([row(FP32_MAX, -FP32_MAX)])),
        (row(1e-45, -0.0), [1, WIDTH], np.array([row(1e-45, -0.0)])),
        ([0.0] * WIDTH * 64, [64, WIDTH], np.zeros((64, WIDTH))),
    ],
)
def test_decode_accepts(data, shape, expected):
    request = protocol.decode_infer(infer_body(tensor(data=data, shape=shape)))
    assert request.batch.dtype == np.float32
    assert request.batch.shape == tuple(shape)
    np.testing.assert_array_equal(request.batch, expected.astype(np.float32))
    assert request.request_id is None


@pytest.mark.parametrize("request_id", ["", "req-1", "ünïcødé", "x" * 1000])
def test_decode_keeps_the_id(request_id):
    assert protocol.decode_infer(infer_body(id=request_id)).request_id == request_id


def test_decode_ignores_unknown_fields():
    body = infer_body(tensor(parameters={"binary_data": False}), parameters={"x": 1}, id=None)
    assert protocol.decode_infer(body).batch.shape == (1, WIDTH)


# --- metadata and encode_infer ------------------------------------------------------------------


def test_metadata_names_the_input_tensor():
    document = protocol.metadata("mlp")
    assert document["name"] == "mlp"
    assert document["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert document["outputs"] == [
        {"name": "output", "datatype": "FP32", "shape": [-1, model.OUTPUT_SIZE]}
    ]
    assert document["versions"] == [protocol.VERSION]
    json.dumps(document)


@pytest.mark.parametrize("rows", [1, 3, 64])
@pytest.mark.parametrize("request_id", [None, "req-7"])
def test_encode_echoes_id_and_shape(rows, request_id):
    batch = np.ones((rows, WIDTH), dtype=np.float32)
    output = np.arange(rows * model.OUTPUT_SIZE, dtype=np.float32).reshape(rows, -1)
    document = protocol.encode_infer("mlp", InferRequest(batch, request_id), output)
    assert document.get("id") == request_id
    assert ("id" in document) == (request_id is not None)
    assert document["model_name"] == "mlp"
    assert document["model_version"] == protocol.VERSION
    (tensor_out,) = document["outputs"]
    assert tensor_out["name"] == "output"
    assert tensor_out["datatype"] == "FP32"
    assert tensor_out["shape"] == [rows, model.OUTPUT_SIZE]
    assert tensor_out["data"] == [float(i) for i in range(rows * model.OUTPUT_SIZE)]
    json.dumps(document, allow_nan=False)


def test_encode_replaces_non_finite_outputs():
    output = np.array([[np.nan, np.inf, -np.inf, 1.5]], dtype=np.float32)
    request = InferRequest(np.zeros((1, WIDTH), dtype=np.float32))
    document = protocol.encode_infer("mlp", request, output)
    assert document["outputs"][0]["data"] == [0.0, 0.0, 0.0, 1.5]
    assert np.isnan(output[0, 0])  # the caller's array is left alone
    json.dumps(document, allow_nan=False)


def test_round_trip_through_the_model():
    mlp = model.Mlp.load(0.1, seed=1)
    request = protocol.decode_infer(infer_body(tensor(shape=[2, WIDTH], data=[0.25] * 2 * WIDTH)))
    document = protocol.encode_infer("mlp", request, mlp.forward(request.batch))
    assert document["outputs"][0]["shape"] == [2, model.OUTPUT_SIZE]
    assert len(document["outputs"][0]["data"]) == 2 * model.OUTPUT_SIZE
