"""Typed inputs, below every front end: the pydantic base of parameter models, the array
and map shapes the v2 wire encodes, and the validation that answers a bad value with the
document's 4000 naming the parameter. The v2 actions and the Kubernetes API check the same
models (a Deployment is decoded into CreateClusterService's parameters)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from openccs.errors import invalid_parameter, missing_parameter, shown

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
