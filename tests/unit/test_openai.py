"""The /v1/completions subset: validation naming the field, and the OpenAI answer shape."""

from __future__ import annotations

import json

import pytest

from model_server import openai


def body(**fields: object) -> bytes:
    return json.dumps({"model": "m", "prompt": "Say this is a test", **fields}).encode()


def test_a_valid_request_counts_its_prompt_and_defaults_max_tokens() -> None:
    request = openai.decode_completion(body(), "m", 4096)
    assert (request.prompt_tokens, request.max_tokens) == (5, 16)
    listed = openai.decode_completion(body(prompt=["one two"], max_tokens=7), "m", 4096)
    assert (listed.prompt, listed.max_tokens) == ("one two", 7)


@pytest.mark.parametrize(
    ("raw", "status", "param"),
    [
        (b"{", 400, None),
        (b"[]", 400, None),
        (json.dumps({"prompt": "x"}).encode(), 400, "model"),
        (body(model="other"), 404, "model"),
        (body(prompt=5), 400, "prompt"),
        (body(prompt=["a", "b"]), 400, "prompt"),
        (body(stream=True), 400, "stream"),
        (body(n=2), 400, "n"),
        (body(max_tokens=0), 400, "max_tokens"),
        (body(max_tokens=True), 400, "max_tokens"),
        (body(max_tokens=5000), 400, "max_tokens"),
        (b'{"model": "m", "prompt": "x", "max_tokens": NaN}', 400, None),
    ],
)
def test_mistakes_are_4xx_naming_the_field(raw: bytes, status: int, param: str | None) -> None:
    with pytest.raises(openai.OpenAIError) as caught:
        openai.decode_completion(raw, "m", 4096)
    error = caught.value
    assert (error.status, error.param) == (status, param)
    document = error.body()["error"]
    assert set(document) == {"message", "type", "param", "code"}
    assert document["type"] == "invalid_request_error" and document["message"]


def test_the_answer_has_the_openai_shape() -> None:
    answer = openai.encode_completion(
        request_id="cmpl-1", created=1700000000, model="m", prompt_tokens=5,
        completion_tokens=7, finish_reason="length",
    )  # fmt: skip
    assert answer["object"] == "text_completion"
    (choice,) = answer["choices"]
    assert (choice["index"], choice["finish_reason"], choice["logprobs"]) == (0, "length", None)
    assert openai.count_tokens(choice["text"]) == 7
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
