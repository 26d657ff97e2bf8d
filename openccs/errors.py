"""Errors of every layer, at the bottom of the import graph: the document's numeric codes
with a CamelCase codeDesc and a sentence to act on. The v2 wire answers them as they are
(`api/envelope.py`); the Kubernetes API maps them to `Status` objects once
(`kube/errors.py` `from_api`); the console shows their message."""

from __future__ import annotations


def shown(text: str, limit: int = 80) -> str:
    """Caller-supplied text as an answer or a log line may quote it: bounded, no NUL."""
    text = text.replace("\x00", "\\0")
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


class ApiError(Exception):
    def __init__(self, code: int, code_desc: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.code_desc = code_desc
        self.message = message


def invalid_parameter(name: str, why: str) -> ApiError:
    return ApiError(4000, "InvalidParameter", f"Invalid parameter {name}: {why}")


def missing_parameter(*names: str) -> ApiError:
    plural = "s" if len(names) > 1 else ""
    return ApiError(
        4000, "MissingParameter", f"Missing required parameter{plural} {', '.join(names)}"
    )


def invalid_action(action: str) -> ApiError:
    return ApiError(4000, "InvalidAction", f"Unknown action {shown(action)!r}")


def not_implemented(action: str) -> ApiError:
    return ApiError(
        6200,
        "NotImplemented",
        f"Action {action} is part of the API but not implemented in this version of openccs",
    )


def signature_failure() -> ApiError:
    return ApiError(
        4100,
        "AuthFailure",
        "Signature check failed: sign the parameters as the signature method describes",
    )


def secret_id_not_found(secret_id: str) -> ApiError:
    return ApiError(
        4104, "SecretIdNotFound", f"SecretId {shown(secret_id)!r} does not exist or is disabled"
    )


def replay(message: str) -> ApiError:
    return ApiError(4500, "ReplayAttack", message)


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(5000, "ResourceNotFound", f"{kind} {shown(str(ident))} does not exist")


def quota_exceeded(quota: str, limit: int) -> ApiError:
    return ApiError(
        4400, "QuotaExceeded", f"Quota {quota} ({limit}) reached: ask the operator to raise it"
    )


def operation_failed(message: str, code_desc: str = "OperationFailed") -> ApiError:
    return ApiError(5100, code_desc, message)


def internal_error(request_id: str) -> ApiError:
    return ApiError(6000, "InternalError", f"Internal error; quote request id {request_id}")


def action_not_allowed(action: str) -> ApiError:
    return ApiError(
        4101,
        "UnauthorizedOperation",
        f"This sub-account is not allowed to call {action}: ask the account owner to allow it",
    )


def resource_not_allowed(resource: str) -> ApiError:
    return ApiError(
        4102,
        "UnauthorizedResource",
        f"This sub-account is not allowed to use resource {resource}:"
        " ask the account owner to allow it",
    )


def owner_only(action: str) -> ApiError:
    return ApiError(
        4103,
        "OwnerOnlyAction",
        f"{action} can only be called with the account owner's SecretId, not a sub-account's",
    )


def account_disabled() -> ApiError:
    return ApiError(4300, "AccountDisabled", "This account is disabled")
