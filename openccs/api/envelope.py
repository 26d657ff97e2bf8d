"""Answer shapes: the flat envelope, and the few actions whose fields stand at top level."""

from __future__ import annotations

from typing import Any

from openccs.errors import ApiError


class TopLevel(dict[str, Any]):
    """A handler's answer whose fields go beside `code` instead of under `data`
    (the VPC module's list actions, GetMonitorData)."""


def envelope(data: Any) -> dict[str, Any]:
    if isinstance(data, TopLevel):
        return {"code": 0, "message": "", "codeDesc": "Success", **data}
    return {"code": 0, "message": "", "codeDesc": "Success", "data": data}


def wire_error(exc: Exception) -> ApiError | None:
    """The document's error that a request which raised `exc` answers: the one place where a
    domain error becomes a code, codeDesc and message of the v2 wire (a domain error carries
    the document's code beside its kind, and the wire answers the code as it is). None for
    anything else: a fault of ours, answered as InternalError with the request id once it
    is logged."""
    if isinstance(exc, ApiError):
        return exc
    return None


def error_envelope(err: ApiError) -> dict[str, Any]:
    return {"code": err.code, "message": err.message, "codeDesc": err.code_desc}
