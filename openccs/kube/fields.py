"""Field ownership as server-side apply keeps it (managedFields, FieldsV1): which manager set
which field, apply with its conflicts, and updates that take the fields they change."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from openccs.kube.errors import KubeError
from openccs.kube.patch import MERGE_KEYS, strategic_patch

Path = tuple[str, ...]  # FieldsV1 elements: "f:spec", 'k:{"name":"web"}', "."
# Fields nobody owns: identity, what the server sets, and the record of ownership itself.
_UNOWNED: set[Path] = {
    ("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"), ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:generation"), ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:deletionTimestamp"), ("f:metadata", "f:managedFields"),
    ("f:metadata", "f:selfLink"),
}  # fmt: skip


def _list_key(name: str, item: Any) -> dict[str, Any] | None:
    """The key of an element of a list merged by key (containers by name...), or None for
    lists that are one value (command, args)."""
    if name not in MERGE_KEYS or not isinstance(item, dict):
        return None
    if name == "ports":
        main = "containerPort" if "containerPort" in item else "port"
        key = {main: item.get(main)}
        if "protocol" in item:
            key["protocol"] = item["protocol"]
        return key
    return {MERGE_KEYS[name]: item.get(MERGE_KEYS[name])}


def _k(key: dict[str, Any]) -> str:
    return "k:" + json.dumps(key, sort_keys=True, separators=(",", ":"))


def field_set(obj: Any, prefix: Path = ()) -> set[Path]:
    """The leaf fields an object sets; each element of a keyed list also as its "." entry."""
    out: set[Path] = set()
    if not isinstance(obj, dict):
        return out
    for name, value in obj.items():
        here = (*prefix, f"f:{name}")
        if here in _UNOWNED or (not prefix and name == "status"):
            continue
        if isinstance(value, dict) and value:
            out |= field_set(value, here)
        elif isinstance(value, list) and value and _list_key(name, value[0]) is not None:
            for item in value:
                key = _list_key(name, item)
                if key is None:
                    continue
                elem = (*here, _k(key))
                out.add((*elem, "."))
                out |= field_set(item, elem)
        else:
            out.add(here)
    return out


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for part, sub in tree.items():
        here = (*prefix, part)
        if isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, here)
        else:
            out.add(here)
    return out


def path_text(path: Path) -> str:
    """As Kubernetes prints a field: .spec.template.spec.containers[name="web"].image"""
    text = ""
    for part in path:
        if part.startswith("f:"):
            text += "." + part[2:]
        elif part.startswith("k:"):
            key = json.loads(part[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
    return text


_MISSING = object()


def _matches(item: Any, key: dict[str, Any]) -> bool:
    return isinstance(item, dict) and all(item.get(k) == v for k, v in key.items())


def value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for part in path:
        if part == ".":
            break
        if part.startswith("f:") and isinstance(cur, dict):
            cur = cur.get(part[2:], _MISSING)
        elif part.startswith("k:") and isinstance(cur, list):
            key = json.loads(part[2:])
            cur = next(
                (
                    x
                    for x in cur
                    if isinstance(x, dict) and all(x.get(k) == v for k, v in key.items())
                ),
                _MISSING,
            )
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def remove_at(obj: Any, path: Path) -> None:
    """Remove the field (or the list element of a "." path) from `obj`, in place."""
    if path and path[-1] == ".":
        path = path[:-1]
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        key = json.loads(last[2:])
        parent[:] = [x for x in parent if not _matches(x, key)]


@dataclass
class Entry:
    manager: str
    operation: str  # Apply or Update
    api_version: str
    time: str
    paths: set[Path] = field(default_factory=set)
    subresource: str = ""

    def who(self) -> str:
        """The manager as a conflict names it."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def same(self, other: Entry) -> bool:
        return (self.manager, self.operation, self.subresource) == (
            other.manager,
            other.operation,
            other.subresource,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.paths),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def entries(managed: list[dict[str, Any]] | None) -> list[Entry]:
    return [
        Entry(
            manager=str(m.get("manager", "")),
            operation=str(m.get("operation", "Update")),
            api_version=str(m.get("apiVersion", "")),
            time=str(m.get("time", "")),
            paths=from_fields_v1(m.get("fieldsV1") or {}),
            subresource=str(m.get("subresource", "")),
        )
        for m in managed or []
    ]


def _differs(a: Any, b: Any, path: Path) -> bool:
    return bool(value_at(a, path) != value_at(b, path))


def _put(managers: list[Entry], mine: Entry) -> list[Entry]:
    out = [e for e in managers if not e.same(mine) and e.paths]
    if mine.paths:
        out.append(mine)
    return out


def conflict(conflicts: list[tuple[Entry, Path]]) -> KubeError:
    """The 409 of an apply that would change fields other managers own."""
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.who()}: {path_text(path)}"
    else:
        lines = []
        for who in sorted({e.who() for e, _ in conflicts}):
            lines.append(f"conflicts with {who}:")
            lines += [f"- {path_text(p)}" for e, p in conflicts if e.who() == who]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.who()}",
         "field": path_text(p)}
        for e, p in conflicts
    ]  # fmt: skip
    return KubeError(409, message, "Conflict", {"causes": causes})


def apply(
    live: dict[str, Any] | None,
    managers: list[Entry],
    applied: dict[str, Any],
    me: Entry,
    force: bool,
) -> tuple[dict[str, Any], list[Entry]]:
    """Server-side apply: the object `me` asks for and who owns what afterwards. A field
    another manager owns with another value is a conflict unless `force` takes it over;
    fields `me` applied before and no longer does, and no one else owns, are removed."""
    me.paths = field_set(applied)
    base = live or {}
    others = [e for e in managers if not e.same(me)]
    clashes = [
        (e, p)
        for e in others
        for p in sorted(e.paths & me.paths)
        # A field the object does not hold (the service model keeps no place for it) has
        # no value to conflict with.
        if p[-1] != "." and value_at(base, p) is not _MISSING and _differs(base, applied, p)
    ]
    if clashes and not force:
        raise conflict(clashes)
    for e, p in clashes:
        e.paths.discard(p)
    new = strategic_patch(copy.deepcopy(base), applied) if live is not None else applied
    previous = next((e.paths for e in managers if e.same(me)), set())
    still_owned = set().union(*(e.paths for e in others)) if others else set()
    # Whole list elements first: their key fields find them.
    for p in sorted(previous - me.paths - still_owned, key=lambda p: (p[-1] != ".", -len(p))):
        remove_at(new, p)
        # and the maps and lists left empty by it (labels: {} after the last label)
        up = p[:-1] if p[-1] == "." else p
        for i in range(len(up) - 1, 0, -1):
            if value_at(new, up[:i]) not in ({}, []):
                break
            remove_at(new, up[:i])
    return new, _put(others, me)


def update(
    current: dict[str, Any] | None, new: dict[str, Any], managers: list[Entry], me: Entry
) -> list[Entry]:
    """An update (create, replace, patch) owns the fields it changed, taken from others."""
    before = current or {}
    changed = {p for p in field_set(new) | field_set(before) if p[-1] == "." or
               _differs(before, new, p)}  # fmt: skip
    if current is not None:
        changed = {p for p in changed if p[-1] != "." or value_at(before, p) is _MISSING}
    if not changed:
        return managers
    gone = {p for p in changed if value_at(new, p) is _MISSING}
    for e in managers:
        if not e.same(me):
            e.paths -= changed
    mine = next((e for e in managers if e.same(me)), None)
    if mine is None:
        mine = me
    mine.paths = (mine.paths | changed) - gone
    mine.time, mine.api_version = me.time, me.api_version
    return _put([e for e in managers if not e.same(me)], mine)
