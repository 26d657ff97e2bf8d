"""Errors in the Kubernetes Status format: the one place where a domain error (the
document's `ApiError`) becomes a Kubernetes error (`from_api`, `as_kube`)."""

from __future__ import annotations

from typing import Any

from openccs.errors import ApiError

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


def from_api(err: ApiError, kind: str = "", name: str = "") -> KubeError:
    """A v2 API error of a domain function, as Kubernetes says it."""
    if err.code == 4000 and err.code_desc.endswith("Exists"):
        return KubeError(409, err.message, "AlreadyExists", {"name": name, "kind": kind})
    if err.code == 4000:
        return KubeError(
            422,
            f'{kind} "{name}" is invalid: {err.message}' if kind else err.message,
            details={
                "name": name,
                "kind": kind,
                "causes": [{"reason": "FieldValueInvalid", "message": err.message}],
            },
        )
    if err.code == 5000:
        return KubeError(404, err.message, details={"name": name, "kind": kind})
    if err.code == 5100:
        return KubeError(409, err.message, details={"name": name, "kind": kind})
    return KubeError(500, f"{err.code_desc}: {err.message}")


def as_kube(exc: BaseException) -> KubeError | None:
    """What a request that raised `exc` answers: a Kubernetes error as it is, a domain error
    as Kubernetes says it; None for anything else (a fault of ours: a 500)."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiError):
        return from_api(exc)
    return None
