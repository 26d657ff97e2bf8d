"""Decoding the dotted wire encoding, and validation answers that name the parameter."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from openccs.api.params import Array, Params, StrMap, decode_params, validate_params
from openccs.errors import ApiError


def test_nested_arrays_and_objects() -> None:
    flat = {
        "Action": "X",
        "clusterId": "cls-1",
        "containers.0.envs.1.name": "B",
        "containers.0.envs.0.name": "A",
        "containers.1.image": "nginx",
        "outputOption.topic": "t",
    }
    assert decode_params(flat) == {
        "clusterId": "cls-1",
        "containers": [{"envs": [{"name": "A"}, {"name": "B"}]}, {"image": "nginx"}],
        "outputOption": {"topic": "t"},
    }


def test_indexes_sort_numerically() -> None:
    flat = {f"ids.{i}": str(i) for i in range(12)}
    assert decode_params(flat) == {"ids": [str(i) for i in range(12)]}


def test_value_and_array_under_one_name_is_refused() -> None:
    with pytest.raises(ApiError) as e:
        decode_params({"a": "1", "a.0": "2"})
    assert e.value.code == 4000 and "a" in e.value.message


class Env(Params):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str = ""


class Container(Params):
    image: str
    envs: Array[Env] = []


class Sample(Params):
    clusterId: str
    limit: int = Field(default=20, ge=0, le=100)
    orderType: Literal["asc", "desc"] = "desc"
    flag: bool = False
    containers: Array[Container] = []
    instanceIds: Array[str] = []
    label: StrMap = {}


def check(flat: dict[str, str]) -> Sample:
    return validate_params(Sample, decode_params(flat))


def test_valid_parameters_decode_to_typed_values() -> None:
    p = check(
        {
            "clusterId": "cls-1",
            "limit": "5",
            "flag": "true",
            "containers.0.image": "nginx",
            "containers.0.envs.0.name": "A_1",
            "instanceIds": "ins-1",
            "label.team": "a",
            "ignored": "x",
        }
    )
    assert p.limit == 5 and p.flag is True and p.orderType == "desc"
    assert p.containers[0].envs[0].name == "A_1"
    assert p.instanceIds == ["ins-1"]
    assert p.label == {"team": "a"}


@pytest.mark.parametrize(
    ("flat", "name", "code_desc"),
    [
        ({}, "clusterId", "MissingParameter"),
        ({"clusterId": "c", "limit": "abc"}, "limit", "InvalidParameter"),
        ({"clusterId": "c", "limit": "101"}, "limit", "InvalidParameter"),
        ({"clusterId": "c", "orderType": "up"}, "orderType", "InvalidParameter"),
        ({"clusterId": "c", "flag": "maybe"}, "flag", "InvalidParameter"),
        (
            {"clusterId": "c", "containers.0.envs.0.name": "A"},
            "containers.0.image",
            "MissingParameter",
        ),
        (
            {"clusterId": "c", "containers.0.image": "i", "containers.0.envs.0.name": "1A"},
            "containers.0.envs.0.name",
            "InvalidParameter",
        ),
    ],
)
def test_errors_are_4000_naming_the_parameter(
    flat: dict[str, str], name: str, code_desc: str
) -> None:
    with pytest.raises(ApiError) as e:
        check(flat)
    assert e.value.code == 4000
    assert e.value.code_desc == code_desc
    assert f"parameter {name}" in e.value.message


@pytest.mark.parametrize(
    ("flat", "name"),
    [
        ({"a." * 1500 + "b": "1"}, "a.a.a"),
        ({"containers.99999.image": "x"}, "containers.99999"),
        ({"containers." + "9" * 5000 + ".image": "x"}, "containers.999"),
        ({"containers.0001000.image": "x"}, "containers.0001000"),
        ({"7": "x"}, "7"),
        ({"clusterId": "a\x00b"}, "clusterId"),
        ({f"p{i}": "x" for i in range(5000)}, "(parameters)"),
    ],
)
def test_hostile_shapes_are_refused_naming_the_parameter(flat: dict[str, str], name: str) -> None:
    with pytest.raises(ApiError) as e:
        check(flat)
    assert e.value.code == 4000
    assert f"parameter {name}" in e.value.message
    assert len(e.value.message) < 300


def test_unicode_digits_are_not_array_indexes() -> None:
    # '²' passes str.isdigit(); it is a key of an object here, never an index.
    assert decode_params({"label.²": "x", "label.①": "y"}) == {"label": {"²": "x", "①": "y"}}
    assert check({"clusterId": "c", "label.²": "x"}).label == {"²": "x"}


def test_an_integer_without_a_declared_range_gets_a_32_bit_one() -> None:
    class Counted(Params):
        count: int
        offset: int = Field(default=0, ge=0)
        maybe: int | None = None

    for flat, name in [
        ({"count": "9223372036854775808"}, "count"),
        ({"count": "1", "offset": str(2**31)}, "offset"),
        ({"count": "1", "maybe": str(-(2**31) - 1)}, "maybe"),
        ({"count": "9" * 5000}, "count"),
    ]:
        with pytest.raises(ApiError) as e:
            validate_params(Counted, decode_params(flat))
        assert e.value.code == 4000 and f"parameter {name}" in e.value.message
        assert len(e.value.message) < 300
    assert validate_params(Counted, {"count": str(2**31 - 1)}).count == 2**31 - 1


def _schema_walk(schema: dict, defs: dict, path: list[str], found: list[tuple[str, int]]) -> None:
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    bounded = {"maximum", "exclusiveMaximum"} & schema.keys() and {
        "minimum",
        "exclusiveMinimum",
    } & schema.keys()
    if schema.get("type") == "integer" and not bounded:
        found.append((".".join(path), -1))
    for alt in schema.get("anyOf", []) + schema.get("allOf", []):
        _schema_walk(alt, defs, path, found)
    for name, sub in schema.get("properties", {}).items():
        _schema_walk(sub, defs, [*path, name], found)
    if isinstance(schema.get("items"), dict):
        _schema_walk(schema["items"], defs, [*path, "0"], found)
    if isinstance(schema.get("additionalProperties"), dict):
        _schema_walk(schema["additionalProperties"], defs, [*path, "key"], found)
    found.append((".".join(path), len(path)))


def test_every_integer_parameter_of_every_action_has_a_range_and_fits_the_depth() -> None:
    from openccs.api.params import MAX_DEPTH
    from openccs.api.registry import finalize

    unbounded, too_deep = [], []
    for act in finalize().all():
        if not act.implemented:
            continue
        schema = act.params.model_json_schema()
        found: list[tuple[str, int]] = []
        _schema_walk(schema, schema.get("$defs", {}), [], found)
        unbounded += [f"{act.name}.{p}" for p, depth in found if depth < 0]
        too_deep += [f"{act.name}.{p}" for p, depth in found if depth > MAX_DEPTH]
    assert not unbounded, f"integer parameters without a range: {unbounded}"
    assert not too_deep, f"parameters deeper than MAX_DEPTH: {too_deep}"
