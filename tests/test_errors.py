"""Domain errors: every error the helpers of `openccs.errors` make says its kind, the v2
wire answers the document's code as it is, and the Kubernetes API answers by the kind
alone, from one table."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from openccs import errors
from openccs.api.envelope import error_envelope, wire_error
from openccs.errors import ApiError, Kind
from openccs.kube.errors import STATUS_OF_KIND, as_kube

# Each helper, called with plain arguments, and the kind and code its error has.
MADE = {
    "invalid_parameter": (("replicas", "must be positive"), Kind.INVALID, 4000),
    "missing_parameter": (("clusterId",), Kind.INVALID, 4000),
    "invalid_action": (("Nope",), Kind.INVALID, 4000),
    "not_implemented": (("AddClusterInstances",), Kind.NOT_IMPLEMENTED, 6200),
    "signature_failure": ((), Kind.UNAUTHENTICATED, 4100),
    "secret_id_not_found": (("AKID",), Kind.UNAUTHENTICATED, 4104),
    "replay": (("seen",), Kind.UNAUTHENTICATED, 4500),
    "not_found": (("cluster", "cls-x"), Kind.NOT_FOUND, 5000),
    "quota_exceeded": (("clusters", 5), Kind.LIMIT_EXCEEDED, 4400),
    "already_exists": (("NamespaceExists", "taken"), Kind.ALREADY_EXISTS, 4000),
    "unavailable": (("RegistryUnavailable", "down"), Kind.UNAVAILABLE, 5100),
    "exhausted": (("VipExhausted", "none left"), Kind.LIMIT_EXCEEDED, 5200),
    "operation_failed": (("busy",), Kind.CONFLICT, 5100),
    "internal_error": (("req-1",), Kind.INTERNAL, 6000),
    "action_not_allowed": (("CreateCluster",), Kind.FORBIDDEN, 4101),
    "resource_not_allowed": (("cls-x",), Kind.FORBIDDEN, 4102),
    "owner_only": (("AddUser",), Kind.FORBIDDEN, 4103),
    "account_disabled": ((), Kind.FORBIDDEN, 4300),
}

# What Kubernetes answers for each kind: (HTTP status, reason).
KUBE = {
    Kind.INVALID: (422, "Invalid"),
    Kind.ALREADY_EXISTS: (409, "AlreadyExists"),
    Kind.NOT_FOUND: (404, "NotFound"),
    Kind.CONFLICT: (409, "Conflict"),
    Kind.UNAUTHENTICATED: (401, "Unauthorized"),
    Kind.FORBIDDEN: (403, "Forbidden"),
    Kind.LIMIT_EXCEEDED: (403, "Forbidden"),
    Kind.UNAVAILABLE: (503, "ServiceUnavailable"),
    Kind.NOT_IMPLEMENTED: (405, "MethodNotAllowed"),
    Kind.INTERNAL: (500, "InternalError"),
}


def _helpers() -> list[str]:
    return sorted(
        name
        for name, fn in vars(errors).items()
        if inspect.isfunction(fn)
        and fn.__module__ == errors.__name__
        and inspect.signature(fn).return_annotation in ("ApiError", ApiError)
    )


def test_every_helper_is_covered() -> None:
    assert _helpers() == sorted(MADE)


@pytest.mark.parametrize("name", sorted(MADE))
def test_each_helper_makes_an_error_of_its_kind(name: str) -> None:
    args, kind, code = MADE[name]
    err = getattr(errors, name)(*args)
    assert isinstance(err, ApiError)
    assert (err.kind, err.code) == (kind, code)
    # The v2 wire answers the document's code and codeDesc as they are.
    assert wire_error(err) is err
    assert error_envelope(err) == {"code": code, "message": err.message, "codeDesc": err.code_desc}


def test_each_helper_says_its_kind_itself() -> None:
    """Not left to the code's default: every ApiError the helpers make passes a Kind."""
    tree = ast.parse(Path(errors.__file__).read_text())
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name not in MADE:
            continue
        calls = [
            c
            for c in ast.walk(fn)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "ApiError"
        ]
        assert calls, fn.name
        for call in calls:
            given = len(call.args) == 4 or any(k.arg == "kind" for k in call.keywords)
            assert given, f"{fn.name} makes an ApiError without a kind"


def test_an_error_made_with_a_code_alone_takes_the_codes_kind() -> None:
    assert ApiError(5000, "ResourceNotFound", "x").kind is Kind.NOT_FOUND
    assert ApiError(4000, "IngressExists", "x").kind is Kind.ALREADY_EXISTS
    assert ApiError(4000, "CidrConflict", "x").kind is Kind.INVALID
    assert ApiError(5100, "ClusterStateError", "x").kind is Kind.CONFLICT
    assert ApiError(5200, "NodePortExhausted", "x").kind is Kind.LIMIT_EXCEEDED
    assert ApiError(-502, "OperationDenied.SourceNotExists", "x").kind is Kind.INTERNAL
    # The codeDesc says a name taken or a part not answering, whatever the code.
    assert ApiError(5100, "ResourceAlreadyExists", "x").kind is Kind.ALREADY_EXISTS
    assert ApiError(5100, "RegistryUnavailable", "x").kind is Kind.UNAVAILABLE
    # A kind given wins over the code's.
    assert ApiError(5100, "ServicePaused", "x", Kind.UNAVAILABLE).kind is Kind.UNAVAILABLE


def test_the_kube_table_covers_every_kind() -> None:
    assert set(STATUS_OF_KIND) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_kubernetes_answers_by_kind_not_code(kind: Kind) -> None:
    # The same code with two kinds answers two ways; the code plays no part.
    for code in (4000, 5100, -1):
        err = ApiError(code, "SomeDesc", "what happened", kind)
        kube = as_kube(err)
        assert kube is not None
        assert (kube.code, kube.reason) == KUBE[kind]
        status = kube.status()
        assert (status["code"], status["reason"]) == KUBE[kind]
        assert status["kind"] == "Status" and status["status"] == "Failure"
        assert "what happened" in status["message"]


def test_an_invalid_value_names_the_object_and_its_cause() -> None:
    err = errors.invalid_parameter("replicas", "must be positive")
    from openccs.kube.errors import from_api

    kube = from_api(err, "Deployment", "web")
    assert kube.message == 'Deployment "web" is invalid: ' + err.message
    assert kube.details is not None
    assert kube.details["causes"] == [{"reason": "FieldValueInvalid", "message": err.message}]
    taken = from_api(errors.already_exists("NamespaceExists", "taken"), "Namespace", "a")
    assert (taken.code, taken.reason, taken.details) == (
        409,
        "AlreadyExists",
        {"name": "a", "kind": "Namespace"},
    )
