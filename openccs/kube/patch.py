"""The three patch formats kubectl sends: JSON merge patch (RFC 7386), strategic merge patch
(lists of named things merged by their key) and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

from openccs.kube.errors import KubeError

# Lists merged element by element in a strategic merge patch, and their merge key.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "taints": "key",
    "imagePullSecrets": "name",
}


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_patch(target: Any, patch: Any, path: str = "") -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            out[name] = [x for x in out.get(name) or [] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and k in MERGE_KEYS:
            key = "port" if k == "ports" and path.endswith("spec") else MERGE_KEYS[k]
            out[k] = _merge_list(out[k], v, key)
        else:
            out[k] = strategic_patch(out.get(k), v, f"{path}.{k}")
    return out


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if not all(isinstance(x, dict) for x in current + patch):
        return copy.deepcopy(patch)
    out = [dict(x) for x in current]
    for item in patch:
        k = item.get(key)
        idx = next((i for i, x in enumerate(out) if x.get(key) == k), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append({a: b for a, b in item.items() if a != "$patch"})
        else:
            out[idx] = strategic_patch(out[idx], item)
    return out


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KubeError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            if p not in doc:
                raise KubeError(422, f"path /{'/'.join(parts)} does not exist")
            doc = doc[p]
        else:
            raise KubeError(422, f"path /{'/'.join(parts)} does not exist")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise KubeError(400, "a JSON patch is a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise KubeError(422, f"test of {op['path']} failed")
            continue
        parent = _walk(doc, parts[:-1])
        last = parts[-1]
        if kind in ("add", "replace"):
            value = copy.deepcopy(op.get("value"))
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                parent[last] = value
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        else:
            raise KubeError(422, f"unsupported JSON patch operation {kind!r}")
    return doc


def apply_patch(target: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    ct = content_type.split(";")[0].strip()
    if ct == "application/json-patch+json":
        result = json_patch(target, body)
    elif ct == "application/merge-patch+json":
        result = merge_patch(target, body)
    elif ct == "application/strategic-merge-patch+json":
        result = strategic_patch(target, body)
    elif ct == "application/apply-patch+yaml":
        raise KubeError(
            415, "server-side apply is not supported: use kubectl apply without --server-side"
        )
    else:
        raise KubeError(415, f"the patch content type {ct!r} is not supported")
    if not isinstance(result, dict):
        raise KubeError(422, "the patch did not produce an object")
    return result
