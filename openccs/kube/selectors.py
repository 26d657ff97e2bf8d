"""Label and field selectors, as kubectl sends them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Match = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$")
Test = Callable[[dict[str, str]], bool]


def _in(key: str, values: set[str], negate: bool) -> Test:
    def test(labels: dict[str, str]) -> bool:
        return (labels.get(key) in values) != negate

    return test


def _eq(key: str, value: str, negate: bool) -> Test:
    def test(labels: dict[str, str]) -> bool:
        return (labels.get(key) == value) != negate

    return test


def _has(key: str, negate: bool) -> Test:
    def test(labels: dict[str, str]) -> bool:
        return (key in labels) != negate

    return test


def label_selector(text: str | None) -> Match:
    if not text:
        return lambda _: True
    tests: list[Test] = []
    for req in _split(text):
        m = _SET.match(req)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            tests.append(_in(m.group(1), values, m.group(2) == "notin"))
        elif "!=" in req:
            key, value = (x.strip() for x in req.split("!=", 1))
            tests.append(_eq(key, value, True))
        elif "=" in req:
            key, value = (x.strip() for x in re.split(r"==?", req, maxsplit=1))
            tests.append(_eq(key, value, False))
        elif req.startswith("!"):
            tests.append(_has(req[1:].strip(), True))
        elif re.match(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$", req):
            tests.append(_has(req, False))
        else:
            raise SelectorError(f"unable to parse requirement: {req!r}")

    def match(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return all(t(labels) for t in tests)

    return match


def _field(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _field_eq(path: str, value: str, negate: bool) -> Match:
    def test(obj: dict[str, Any]) -> bool:
        return (_field(obj, path) == value) != negate

    return test


def field_selector(text: str | None) -> Match:
    if not text:
        return lambda _: True
    tests: list[Match] = []
    for req in _split(text):
        if "!=" in req:
            path, value = (x.strip() for x in req.split("!=", 1))
            tests.append(_field_eq(path, value, True))
        elif "=" in req:
            path, value = (x.strip() for x in re.split(r"==?", req, maxsplit=1))
            tests.append(_field_eq(path, value, False))
        else:
            raise SelectorError(f"invalid field selector: {req!r}")
    return lambda o: all(t(o) for t in tests)
