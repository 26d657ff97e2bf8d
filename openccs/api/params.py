"""Action parameters: the dotted wire encoding decoded into nested values, then validated.

`containers.0.envs.1.name=x` becomes `{"containers": [{"envs": [{}, {"name": "x"}]}]}`.
Objects whose keys are all array indexes become lists. Each action declares a pydantic
model; its errors become 4000 answers naming the parameter in the wire's dotted form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import invalid_parameter, missing_parameter

COMMON_PARAMETERS = frozenset(
    {
        "Action",
        "Region",
        "Timestamp",
        "Nonce",
        "SecretId",
        "Signature",
        "SignatureMethod",
        "Token",
        "RequestClient",
        "Version",
    }
)


class Params(BaseModel):
    """Base of every action's parameter model: unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class NoParams(Params):
    pass


class Paged(Params):
    """The document's paging pair, shared by the list actions."""

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=20, ge=1, le=100)


def _to_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _to_lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_params(flat: Mapping[str, str]) -> dict[str, Any]:
    """Turn the wire's flat dotted names into nested objects and arrays."""
    root: dict[str, Any] = {}
    for name in sorted(flat):
        if name in COMMON_PARAMETERS:
            continue
        parts = name.split(".")
        if any(p == "" for p in parts):
            raise invalid_parameter(name, "empty segment in parameter name")
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise invalid_parameter(
                    ".".join(parts[: i + 1]), "given both as a value and as an array or object"
                )
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            raise invalid_parameter(name, "given both as a value and as an array or object")
        node[last] = flat[name]
    result: dict[str, Any] = _to_lists(root)
    return result


def _as_list(value: Any) -> Any:
    # The document writes some arrays as a bare `name=value`; accept it as one element.
    if value is None or isinstance(value, list):
        return value
    return [value]


def _as_map(value: Any) -> Any:
    # `label.0=x` decodes to a list; a map parameter wants it back as {"0": "x"}.
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return value


T = TypeVar("T")
Array = Annotated[list[T], BeforeValidator(_as_list)]
# The document's 0/1 switches (wire values are strings, so Literal[0, 1] would refuse "1").
Flag = Annotated[int, Field(ge=0, le=1)]
StrMap = Annotated[dict[str, str], BeforeValidator(_as_map)]

P = TypeVar("P", bound=BaseModel)


def _loc(loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    parts = [str(p) for p in loc]
    # Use the wire name (alias) of the top-level field when it has one.
    if parts:
        field = model.model_fields.get(parts[0])
        if field is not None and field.alias:
            parts[0] = field.alias
    return ".".join(parts) or "(parameters)"


def _missing_names(errs: list[Any], model: type[BaseModel]) -> list[str]:
    """Every missing required parameter, so that one answer names them all."""
    return [_loc(tuple(e["loc"]), model) for e in errs if e["type"] == "missing"]


def validate_params(model: type[P], nested: dict[str, Any]) -> P:
    try:
        return model.model_validate(nested)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        missing = _missing_names(errs, model)
        if missing:
            raise missing_parameter(*missing) from None
        err = errs[0]
        name = _loc(tuple(err["loc"]), model)
        given = err.get("input")
        shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
        raise invalid_parameter(name, err["msg"] + shown) from None
