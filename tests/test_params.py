"""Decoding the dotted wire encoding, and validation answers that name the parameter."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from openccs.api.errors import ApiError
from openccs.api.params import Array, Params, StrMap, decode_params, validate_params


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
