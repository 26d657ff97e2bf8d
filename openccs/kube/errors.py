"""Errors in the Kubernetes Status format: the one place where a domain error (an
`ApiError`, by its `Kind`) becomes a Kubernetes error (`from_api`, `as_kube`)."""

from __future__ import annotations

from typing import Any

from openccs.errors import ApiError, Kind

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


class KubeError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def not_found(resource: str, name: str, group: str = "") -> KubeError:
    what = f"{resource}.{group}" if group else resource
    return KubeError(
        404,
        f'{what} "{name}" not found',
        details={"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, field: str, why: str, group: str = "") -> KubeError:
    return KubeError(
        422,
        f'{kind} "{name}" is invalid: {field}: {why}',
        details={
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}],
        },
    )


def unsupported(kind: str, name: str, field: str, group: str = "") -> KubeError:
    return invalid(
        kind,
        name,
        field,
        "Unsupported value: openccs services (the API document's service model) do not"
        " have this field",
        group,
    )


# A domain error's kind as Kubernetes says it: (HTTP status, reason). The one table.
STATUS_OF_KIND: dict[Kind, tuple[int, str]] = {
    Kind.INVALID: (422, "Invalid"),
    Kind.ALREADY_EXISTS: (409, "AlreadyExists"),
    Kind.NOT_FOUND: (404, "NotFound"),
    Kind.CONFLICT: (409, "Conflict"),
    Kind.UNAUTHENTICATED: (401, "Unauthorized"),
    Kind.FORBIDDEN: (403, "Forbidden"),
    Kind.LIMIT_EXCEEDED: (403, "Forbidden"),  # as an exceeded ResourceQuota answers
    Kind.UNAVAILABLE: (503, "ServiceUnavailable"),
    Kind.NOT_IMPLEMENTED: (405, "MethodNotAllowed"),
    Kind.INTERNAL: (500, "InternalError"),
}


def from_api(err: ApiError, kind: str = "", name: str = "") -> KubeError:
    """A domain error, as Kubernetes says it (by its `Kind`, never its v2 code); `kind` and
    `name` are those of the Kubernetes object the request was about, when known."""
    code, reason = STATUS_OF_KIND[err.kind]
    details: dict[str, Any] = {"name": name, "kind": kind}
    if err.kind is Kind.INVALID:
        message = f'{kind} "{name}" is invalid: {err.message}' if kind else err.message
        details["causes"] = [{"reason": "FieldValueInvalid", "message": err.message}]
        return KubeError(code, message, reason, details)
    if err.kind in (Kind.INTERNAL, Kind.NOT_IMPLEMENTED):
        # Nothing about the object: what failed, in the document's words.
        return KubeError(code, f"{err.code_desc}: {err.message}", reason)
    return KubeError(code, err.message, reason, details)


def as_kube(exc: BaseException) -> KubeError | None:
    """What a request that raised `exc` answers: a Kubernetes error as it is, a domain error
    as Kubernetes says it; None for anything else (a fault of ours: a 500)."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiError):
        return from_api(exc)
    return None
