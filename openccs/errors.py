"""Errors of every layer, at the bottom of the import graph: the document's numeric codes
with a CamelCase codeDesc and a sentence to act on, and the domain's kind of failure
(`Kind`). The v2 wire answers the code as it is (`api/envelope.py` `wire_error`); the
Kubernetes API maps the kind to a `Status` object once (`kube/errors.py` `as_kube`); the
console shows the message."""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """What kind of failure an error is, whatever its code in the document: what a front end
    other than the v2 wire (the Kubernetes API) answers from."""

    INVALID = "Invalid"  # a value the caller gave is wrong or missing
    ALREADY_EXISTS = "AlreadyExists"  # a name the caller gave is taken
    NOT_FOUND = "NotFound"  # what the caller names does not exist (for it)
    CONFLICT = "Conflict"  # the resource's state refuses the change now (try again later)
    UNAUTHENTICATED = "Unauthenticated"  # who is calling is not proven
    FORBIDDEN = "Forbidden"  # the caller is known but may not do this
    LIMIT_EXCEEDED = "LimitExceeded"  # a quota, pool or per-request limit is used up
    UNAVAILABLE = "Unavailable"  # a part openccs needs for this does not answer
    NOT_IMPLEMENTED = "NotImplemented"  # the document has it; this version does not
    INTERNAL = "Internal"  # a fault of ours


# The kind of an error made with a code alone (`ApiError(code, ...)` without `kind`): the
# document's codes as they are used. The helpers below say their kind themselves.
KIND_OF_CODE = {
    4000: Kind.INVALID,
    4100: Kind.UNAUTHENTICATED,
    4101: Kind.FORBIDDEN,
    4102: Kind.FORBIDDEN,
    4103: Kind.FORBIDDEN,
    4104: Kind.UNAUTHENTICATED,
    4300: Kind.FORBIDDEN,
    4400: Kind.LIMIT_EXCEEDED,
    4500: Kind.UNAUTHENTICATED,
    5000: Kind.NOT_FOUND,
    5100: Kind.CONFLICT,
    5200: Kind.LIMIT_EXCEEDED,
    6000: Kind.INTERNAL,
    6200: Kind.NOT_IMPLEMENTED,
}


def shown(text: str, limit: int = 80) -> str:
    """Caller-supplied text as an answer or a log line may quote it: bounded, no NUL."""
    text = text.replace("\x00", "\\0")
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


class ApiError(Exception):
    """A domain error: the document's code and codeDesc (what the v2 wire answers), a
    message, and its `Kind`. Without `kind`, the code says it (`KIND_OF_CODE`; a codeDesc
    ending in "Exists" (not "NotExists") is a name taken, one ending in "Unavailable" a
    part that does not answer, whatever their code; an unknown code is internal)."""

    def __init__(self, code: int, code_desc: str, message: str, kind: Kind | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.code_desc = code_desc
        self.message = message
        if kind is None:
            if code_desc.endswith("Exists") and not code_desc.endswith("NotExists"):
                kind = Kind.ALREADY_EXISTS
            elif code_desc.endswith("Unavailable"):
                kind = Kind.UNAVAILABLE
            else:
                kind = KIND_OF_CODE.get(code, Kind.INTERNAL)
        self.kind = kind


def invalid_parameter(name: str, why: str) -> ApiError:
    return ApiError(4000, "InvalidParameter", f"Invalid parameter {name}: {why}", Kind.INVALID)


def missing_parameter(*names: str) -> ApiError:
    plural = "s" if len(names) > 1 else ""
    return ApiError(
        4000,
        "MissingParameter",
        f"Missing required parameter{plural} {', '.join(names)}",
        Kind.INVALID,
    )


def invalid_action(action: str) -> ApiError:
    return ApiError(4000, "InvalidAction", f"Unknown action {shown(action)!r}", Kind.INVALID)


def not_implemented(action: str) -> ApiError:
    return ApiError(
        6200,
        "NotImplemented",
        f"Action {action} is part of the API but not implemented in this version of openccs",
        Kind.NOT_IMPLEMENTED,
    )


def signature_failure() -> ApiError:
    return ApiError(
        4100,
        "AuthFailure",
        "Signature check failed: sign the parameters as the signature method describes",
        Kind.UNAUTHENTICATED,
    )


def secret_id_not_found(secret_id: str) -> ApiError:
    return ApiError(
        4104,
        "SecretIdNotFound",
        f"SecretId {shown(secret_id)!r} does not exist or is disabled",
        Kind.UNAUTHENTICATED,
    )


def replay(message: str) -> ApiError:
    return ApiError(4500, "ReplayAttack", message, Kind.UNAUTHENTICATED)


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(
        5000, "ResourceNotFound", f"{kind} {shown(str(ident))} does not exist", Kind.NOT_FOUND
    )


def quota_exceeded(quota: str, limit: int) -> ApiError:
    return ApiError(
        4400,
        "QuotaExceeded",
        f"Quota {quota} ({limit}) reached: ask the operator to raise it",
        Kind.LIMIT_EXCEEDED,
    )


def already_exists(code_desc: str, message: str) -> ApiError:
    """A name the caller gave is taken (4000, as the document says a duplicate name)."""
    return ApiError(4000, code_desc, message, Kind.ALREADY_EXISTS)


def unavailable(code_desc: str, message: str) -> ApiError:
    """A part openccs needs for the request does not answer (the registry, a machine)."""
    return ApiError(5100, code_desc, message, Kind.UNAVAILABLE)


def exhausted(code_desc: str, message: str) -> ApiError:
    """A pool of addresses or ports is used up."""
    return ApiError(5200, code_desc, message, Kind.LIMIT_EXCEEDED)


def operation_failed(message: str, code_desc: str = "OperationFailed") -> ApiError:
    """The resource's state refuses the change now (5100: try again later)."""
    return ApiError(5100, code_desc, message, Kind.CONFLICT)


def internal_error(request_id: str) -> ApiError:
    return ApiError(
        6000, "InternalError", f"Internal error; quote request id {request_id}", Kind.INTERNAL
    )


def action_not_allowed(action: str) -> ApiError:
    return ApiError(
        4101,
        "UnauthorizedOperation",
        f"This sub-account is not allowed to call {action}: ask the account owner to allow it",
        Kind.FORBIDDEN,
    )


def resource_not_allowed(resource: str) -> ApiError:
    return ApiError(
        4102,
        "UnauthorizedResource",
        f"This sub-account is not allowed to use resource {resource}:"
        " ask the account owner to allow it",
        Kind.FORBIDDEN,
    )


def owner_only(action: str) -> ApiError:
    return ApiError(
        4103,
        "OwnerOnlyAction",
        f"{action} can only be called with the account owner's SecretId, not a sub-account's",
        Kind.FORBIDDEN,
    )


def account_disabled() -> ApiError:
    return ApiError(4300, "AccountDisabled", "This account is disabled", Kind.FORBIDDEN)
