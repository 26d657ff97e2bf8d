"""Just enough of Kubernetes' protobuf encoding to read what typed clients send for the
objects whose body matters here: an object's metadata (name, labels, annotations)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAGIC = b"k8s\x00"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield num, wire, value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield num, wire, buf[i : i + size]
            i += size
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _map_entry(buf: bytes) -> tuple[str, str]:
    k = v = ""
    for num, _, value in _fields(buf):
        if num == 1:
            k = value.decode()
        elif num == 2:
            v = value.decode()
    return k, v


def _metadata(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for num, _, value in _fields(buf):
        if num == 1:
            meta["name"] = value.decode()
        elif num == 2:
            meta["generateName"] = value.decode()
        elif num == 3:
            meta["namespace"] = value.decode()
        elif num in (11, 12):
            k, v = _map_entry(value)
            meta.setdefault("labels" if num == 11 else "annotations", {})[k] = v
    return meta


def decode_object(body: bytes) -> dict[str, Any]:
    """An enveloped object (`k8s\\0` + runtime.Unknown) as JSON with its metadata only."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message")
    api_version = kind = ""
    raw = b""
    for num, _, value in _fields(body[len(MAGIC) :]):
        if num == 1:
            for n2, _, v2 in _fields(value):
                if n2 == 1:
                    api_version = v2.decode()
                elif n2 == 2:
                    kind = v2.decode()
        elif num == 2:
            raw = value
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    for num, _, value in _fields(raw):
        if num == 1:
            out["metadata"] = _metadata(value)
    return out
