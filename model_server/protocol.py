"""The Open Inference Protocol (KServe v2) subset, on the wire: decode requests, encode answers.

Pure: JSON documents in, numpy arrays and documents out. Every bad request raises
``ProtocolError`` with a 4xx status and a message naming what is wrong, so the server never
answers a client mistake with a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_server import model

MAX_ROWS_PER_REQUEST = 64
DATATYPE = "FP32"
VERSION = "1"


class ProtocolError(Exception):
    """A client mistake; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        """The v2 error document."""
        return {"error": self.message}


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request."""

    batch: np.ndarray
    """``(rows, INPUT_SIZE)`` float32."""
    request_id: str | None = None


def metadata(model_name: str) -> dict[str, Any]:
    """``GET /v2/models/{name}``: names the input tensor, its datatype and shape."""
    return {
        "name": model_name,
        "versions": [VERSION],
        "platform": "numpy",
        "inputs": [
            {"name": model.INPUT_NAME, "datatype": DATATYPE, "shape": [-1, model.INPUT_SIZE]}
        ],
        "outputs": [
            {"name": model.OUTPUT_NAME, "datatype": DATATYPE, "shape": [-1, model.OUTPUT_SIZE]}
        ],
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _flatten(data: Any) -> list[Any]:
    """The v2 protocol allows tensor data flat or nested in row-major order."""
    if not isinstance(data, list):
        raise ProtocolError(400, "inputs[0].data must be an array of numbers")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > 4:
                    raise ProtocolError(400, "inputs[0].data is nested too deeply")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def parse_object(body: bytes) -> dict[str, Any]:
    """The JSON object ``body`` holds; ValueError with a one-line reason otherwise (bad UTF-8
    or JSON, NaN or Infinity, or another JSON value)."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"the body is not valid UTF-8 JSON: {str(error)[:100]}") from error
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def decode_infer(body: bytes) -> InferRequest:
    """Validate one ``POST /v2/models/{name}/infer`` body."""
    try:
        document = parse_object(body)
    except ValueError as error:
        raise ProtocolError(400, str(error)) from error
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, "id must be a string")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError(
            400, f"inputs must be an array of exactly one tensor {model.INPUT_NAME!r}"
        )
    tensor = inputs[0]
    if tensor.get("name") != model.INPUT_NAME:
        raise ProtocolError(
            400, f"unknown input {tensor.get('name')!r}: the input is {model.INPUT_NAME!r}"
        )
    if tensor.get("datatype") != DATATYPE:
        raise ProtocolError(
            400, f"inputs[0].datatype must be {DATATYPE}, not {tensor.get('datatype')!r}"
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        or not 1 <= shape[0] <= MAX_ROWS_PER_REQUEST
        or shape[1] != model.INPUT_SIZE
    ):
        raise ProtocolError(
            400,
            f"inputs[0].shape must be [n, {model.INPUT_SIZE}] with 1 <= n <= "
            f"{MAX_ROWS_PER_REQUEST}, not {json.dumps(shape)[:60]}",
        )
    flat = _flatten(tensor.get("data"))
    rows, columns = shape
    if len(flat) != rows * columns:
        raise ProtocolError(
            400, f"inputs[0].data has {len(flat)} values; shape {shape} needs {rows * columns}"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
        raise ProtocolError(400, "inputs[0].data must hold only numbers")
    try:
        batch = np.asarray(flat, dtype=np.float64).reshape(rows, columns)
    except OverflowError as error:
        raise ProtocolError(400, "inputs[0].data holds a number out of range") from error
    if not np.isfinite(batch).all() or (np.abs(batch) > np.finfo(np.float32).max).any():
        raise ProtocolError(400, "inputs[0].data must hold finite FP32 values")
    return InferRequest(batch.astype(np.float32), request_id)


def encode_infer(model_name: str, request: InferRequest, output: np.ndarray) -> dict[str, Any]:
    """The v2 inference response for ``output``."""
    values = output.astype(np.float64)
    values[~np.isfinite(values)] = 0.0
    document: dict[str, Any] = {
        "model_name": model_name,
        "model_version": VERSION,
        "outputs": [
            {
                "name": model.OUTPUT_NAME,
                "datatype": DATATYPE,
                "shape": list(output.shape),
                "data": values.ravel().tolist(),
            }
        ],
    }
    if request.request_id is not None:
        document["id"] = request.request_id
    return document
