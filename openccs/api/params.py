"""Action parameters: the dotted wire encoding decoded into nested values, then validated.

`containers.0.envs.1.name=x` becomes `{"containers": [{"envs": [{}, {"name": "x"}]}]}`.
Objects whose keys are all array indexes become lists. Each action declares a pydantic
model; its errors become 4000 answers naming the parameter in the wire's dotted form.
Hostile shapes (too many parameters, names nested too deep, huge array indexes, NUL
characters) are refused before any of that, and every integer has a range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from openccs.errors import invalid_parameter, shown

# The typed-input half lives below every front end; the wire's names for it stay here.
from openccs.schema import INT_MAX, INT_MIN, Array, Flag, Params, StrMap, validate_params

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "Array",
    "Flag",
    "Params",
    "StrMap",
    "validate_params",
]

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
