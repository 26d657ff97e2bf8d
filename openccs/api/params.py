"""Action parameters: the dotted wire encoding decoded into nested values, then validated.

`containers.0.envs.1.name=x` becomes `{"containers": [{"envs": [{}, {"name": "x"}]}]}`.
Objects whose keys are all array indexes become lists. Each action declares a pydantic
model; its errors become 4000 answers naming the parameter in the wire's dotted form.
Hostile shapes (too many parameters, names nested too deep, huge array indexes, NUL
characters) are refused before any of that, and every integer has a range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from openccs.errors import invalid_parameter, missing_parameter, shown

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


# What one request may carry. The deepest name of the document is 5 segments
# (containers.0.healthCheck.0.type); the largest arrays hold 100 items.
MAX_PARAMETERS = 2000
MAX_DEPTH = 8
MAX_INDEX = 999
# An integer parameter without a range of its own gets this one: it fits every integer
# column of both databases, and no count, size or id of the document comes near it.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


class Params(BaseModel):
    """Base of every action's parameter model: unknown parameters are ignored, and an
    integer field declared without a bound gets the missing side of INT_MIN..INT_MAX."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            if field.annotation not in (int, int | None):
                continue
            kinds = {type(m) for m in field.metadata}
            if not kinds & {annotated_types.Le, annotated_types.Lt}:
                field.metadata.append(annotated_types.Le(INT_MAX))
                changed = True
            if not kinds & {annotated_types.Ge, annotated_types.Gt}:
                field.metadata.append(annotated_types.Ge(INT_MIN))
                changed = True
        if changed:
            cls.model_rebuild(force=True)


class NoParams(Params):
    pass


class Paged(Params):
    """The document's paging pair, shared by the list actions."""

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=20, ge=1, le=100)


def is_index(segment: str) -> bool:
    """An array index as the wire writes it: ASCII digits only (str.isdigit takes '²')."""
    return segment.isascii() and segment.isdigit()


def _to_lists(node: Any) -> Any:
    # Recursion is bounded: decode_params refuses names deeper than MAX_DEPTH.
    if not isinstance(node, dict):
        return node
    converted = {k: _to_lists(v) for k, v in node.items()}
    if converted and all(is_index(k) for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def check_shape(flat: Mapping[str, str]) -> None:
    """What any request may carry, checked before anything reads it (authentication too)."""
    if len(flat) > MAX_PARAMETERS:
        raise invalid_parameter(
            "(parameters)", f"{len(flat)} parameters; at most {MAX_PARAMETERS} are accepted"
        )
    for name, value in flat.items():
        if "\x00" in name:
            raise invalid_parameter(shown(name), "NUL character in the parameter name")
        if "\x00" in value:
            raise invalid_parameter(shown(name), "NUL character in the value")


def decode_params(flat: Mapping[str, str]) -> dict[str, Any]:
    """Turn the wire's flat dotted names into nested objects and arrays."""
    check_shape(flat)
    root: dict[str, Any] = {}
    for name in sorted(flat):
        if name in COMMON_PARAMETERS:
            continue
        parts = name.split(".")
        if any(p == "" for p in parts):
            raise invalid_parameter(shown(name), "empty segment in parameter name")
        if len(parts) > MAX_DEPTH:
            raise invalid_parameter(
                shown(name), f"nested {len(parts)} deep; at most {MAX_DEPTH} segments"
            )
        if is_index(parts[0]):
            raise invalid_parameter(shown(name), "a parameter name cannot start with an index")
        for i, part in enumerate(parts):
            # Length first: int() of thousands of digits is slow, and refused past 4300.
            if is_index(part) and (len(part) > 6 or int(part) > MAX_INDEX):
                raise invalid_parameter(
                    shown(".".join(parts[: i + 1])), f"array index above {MAX_INDEX}"
                )
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise invalid_parameter(
                    shown(".".join(parts[: i + 1])),
                    "given both as a value and as an array or object",
                )
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            raise invalid_parameter(shown(name), "given both as a value and as an array or object")
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
        got = "" if isinstance(given, dict | list) else f" (got {shown(repr(given))})"
        raise invalid_parameter(shown(name), err["msg"] + got) from None
