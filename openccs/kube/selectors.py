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


def label_selector(text: str | None) -> Match:
    if not text:
        return lambda _: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for req in _split(text):
        m = _SET.match(req)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                tests.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
        elif "!=" in req:
            key, value = (x.strip() for x in req.split("!=", 1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
        elif "=" in req:
            key, value = (x.strip() for x in re.split(r"==?", req, maxsplit=1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
        elif req.startswith("!"):
            key = req[1:].strip()
            tests.append(lambda lb, k=key: k not in lb)
        elif re.match(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$", req):
            tests.append(lambda lb, k=req: k in lb)
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


def field_selector(text: str | None) -> Match:
    if not text:
        return lambda _: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for req in _split(text):
        if "!=" in req:
            path, value = (x.strip() for x in req.split("!=", 1))
            tests.append(lambda o, p=path, v=value: _field(o, p) != v)
        elif "=" in req:
            path, value = (x.strip() for x in re.split(r"==?", req, maxsplit=1))
            tests.append(lambda o, p=path, v=value: _field(o, p) == v)
        else:
            raise SelectorError(f"invalid field selector: {req!r}")
    return lambda o: all(t(o) for t in tests)
