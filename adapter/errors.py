"""Failures that travel to the client as a Kubernetes ``metav1.Status``.

Every error the adapter answers with is one of these. Each carries its HTTP code, the Kubernetes
``reason`` and a human message, so the one error middleware in ``adapter.app`` only serializes it
(as ``pkg/provider/errors.go`` of custom-metrics-apiserver does). Handlers never build error JSON.

Pure: no aiohttp import, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """An error answered as a ``Status`` object with ``status: "Failure"``."""

    code: int
    reason: str
    message: str
    field_path: str | None = None
    """The offending field (push validation), reported in ``details.causes[0].field``."""
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status_body(self) -> dict[str, Any]:
        """The ``metav1.Status`` JSON document for this error."""
        details = dict(self.details)
        if self.field_path is not None:
            details["causes"] = [
                {"reason": "FieldValueInvalid", "message": self.message, "field": self.field_path}
            ]
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def bad_request(message: str, field_path: str | None = None) -> ApiError:
    """400: a malformed path, selector or push body."""
    return ApiError(400, "BadRequest", message, field_path)


def invalid_field(message: str, field_path: str) -> ApiError:
    """422: a well-formed push body whose field breaks the contract."""
    return ApiError(422, "Invalid", message, field_path)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    """401: no credentials, or credentials that prove nothing."""
    return ApiError(401, "Unauthorized", message)


def forbidden(message: str) -> ApiError:
    """403: an authenticated caller that may not do this (SubjectAccessReview, push identity)."""
    return ApiError(403, "Forbidden", message)


def too_many_requests(message: str, retry_after: str) -> ApiError:
    """429: the adapter sheds this push; ``retry_after`` (seconds) goes in ``Retry-After``."""
    return ApiError(429, "TooManyRequests", message, headers={"Retry-After": retry_after})


def service_unavailable(message: str) -> ApiError:
    """503: a dependency (the Kubernetes API) is out of reach and no cached answer is fresh."""
    return ApiError(503, "ServiceUnavailable", message)


def not_found(message: str) -> ApiError:
    """404: unknown metric, resource or path, or no fresh data to answer with."""
    return ApiError(404, "NotFound", message)


def method_not_allowed(method: str, path: str) -> ApiError:
    """405: everything but GET on the metrics APIs (and POST on the push endpoint)."""
    return ApiError(405, "MethodNotAllowed", f"the server does not allow method {method} on {path}")


def request_too_large(limit_bytes: int) -> ApiError:
    """413: a push body above the limit."""
    return ApiError(
        413, "RequestEntityTooLarge", f"request body exceeds the limit of {limit_bytes} bytes"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    """415: a push that is not JSON."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"unsupported content type {content_type!r}: pushes must be application/json",
        "Content-Type",
    )


def internal_error() -> ApiError:
    """500: a bug. The message hides details; the log has them."""
    return ApiError(500, "InternalError", "Internal error occurred: unable to fetch metrics")
