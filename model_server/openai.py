"""The OpenAI Completions API subset the language-model mimics serve: ``POST /v1/completions``.

Pure: a JSON body in, a ``CompletionRequest`` out, and the answer document back. A client
mistake raises ``OpenAIError`` carrying the status and the OpenAI error document (``{"error":
{"message", "type", "param", "code"}}``) naming the field, so the server answers it as a 4xx.

Tokens are counted the simple way (a word is a token): the mimic has no tokenizer, and what
matters to the metrics is that a longer prompt costs a longer prefill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from model_server import protocol

__all__ = [
    "CompletionRequest",
    "OpenAIError",
    "count_tokens",
    "decode_completion",
    "encode_completion",
]

DEFAULT_MAX_TOKENS: Final = 16
"""OpenAI's default for ``max_tokens`` in the Completions API."""
_VOCABULARY: Final = ("the", "model", "serves", "a", "token", "at", "each", "step")


class OpenAIError(Exception):
    """A client mistake; ``status`` is the HTTP status, ``body()`` the OpenAI error document."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }


@dataclass(frozen=True)
class CompletionRequest:
    """A decoded completions request."""

    prompt: str
    prompt_tokens: int
    max_tokens: int


def count_tokens(text: str) -> int:
    """Tokens in ``text`` for this mimic: its words, at least one.

    >>> count_tokens("Say this is a test"), count_tokens("")
    (5, 1)
    """
    return max(1, len(text.split()))


def decode_completion(body: bytes, model: str, max_model_len: int) -> CompletionRequest:
    """Validate a ``POST /v1/completions`` body for a server serving ``model``."""
    try:
        document = protocol.parse_object(body)
    except ValueError as error:
        raise OpenAIError(400, str(error)) from error
    name = document.get("model")
    if not isinstance(name, str):
        raise OpenAIError(400, "model is required and must be a string", "model")
    if name != model:
        raise OpenAIError(
            404,
            f"The model `{name}` does not exist; this server serves `{model}`",
            "model",
            "model_not_found",
        )
    prompt = document.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise OpenAIError(400, "prompt must be a string (or a list of one string)", "prompt")
    if document.get("stream"):
        raise OpenAIError(400, "stream is not supported by this server", "stream")
    n = document.get("n", 1)
    if n != 1 or isinstance(n, bool):
        raise OpenAIError(400, "n must be 1", "n")
    max_tokens = document.get("max_tokens", DEFAULT_MAX_TOKENS)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise OpenAIError(400, "max_tokens must be an integer >= 1", "max_tokens")
    prompt_tokens = count_tokens(prompt)
    if prompt_tokens + max_tokens > max_model_len:
        raise OpenAIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you"
            f" requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt,"
            f" {max_tokens} in the completion).",
            "max_tokens",
        )
    return CompletionRequest(prompt, prompt_tokens, max_tokens)


def encode_completion(
    *,
    request_id: str,
    created: int,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str,
) -> dict[str, Any]:
    """The ``text_completion`` answer: one choice of ``completion_tokens`` words, and usage."""
    text = " " + " ".join(_VOCABULARY[i % len(_VOCABULARY)] for i in range(completion_tokens))
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
