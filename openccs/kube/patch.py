"""The three patch formats: JSON merge patch (RFC 7386), strategic merge patch (lists of named
things merged by their key, for the fields the service model holds) and JSON patch (RFC 6902,
by the jsonpatch library). Server-side apply is fields.apply."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

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
    """Kubernetes' strategic merge patch: maps merged, the lists of MERGE_KEYS merged element
    by element, other lists replaced; with its directives ($patch replace and delete,
    $setElementOrder, $retainKeys, $deleteFromPrimitiveList)."""
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
        if v is None or (isinstance(v, dict) and v.get("$patch") == "delete"):
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and k in MERGE_KEYS:
            key = "port" if k == "ports" and path.endswith("spec") else MERGE_KEYS[k]
            out[k] = _merge_list(out[k], v, key)
        else:
            out[k] = strategic_patch(out.get(k), v, f"{path}.{k}")
    for k, order in patch.items():
        name = k.removeprefix("$setElementOrder/")
        if name != k and isinstance(order, list) and isinstance(out.get(name), list):
            key = "port" if name == "ports" and path.endswith("spec") else MERGE_KEYS.get(name, "")
            out[name] = _ordered(out[name], order, key)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
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


def _ordered(items: list[Any], order: list[Any], key: str) -> list[Any]:
    """`items` in the order a $setElementOrder gives; those it does not name after them."""

    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    wanted = [ident(x) for x in order]
    rank = {json.dumps(w, sort_keys=True): i for i, w in enumerate(wanted)}

    def place(x: Any) -> int:
        return rank.get(json.dumps(ident(x), sort_keys=True), len(rank))

    return sorted(items, key=place)


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 through jsonpatch: a body that is no patch answers 400 (as the API server's
    DecodePatch); an operation that cannot apply (a missing path, an index out of range or
    not a number, a failed test) 422, and nothing changes."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise KubeError(400, "a JSON patch is a list of operation objects")
    try:
        patch = jsonpatch.JsonPatch(ops)
        return patch.apply(target)
    except jsonpatch.InvalidJsonPatch as exc:
        raise KubeError(422, f"the JSON patch is not valid: {exc}") from None
    except jsonpatch.JsonPatchTestFailed as exc:
        raise KubeError(422, f"the JSON patch's test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise KubeError(422, f"the JSON patch cannot be applied: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise KubeError(422, f"the JSON patch cannot be applied: {exc}") from None


APPLY = "application/apply-patch+yaml"  # server-side apply: see fields.apply


def apply_patch(target: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    ct = content_type.split(";")[0].strip()
    if ct == "application/json-patch+json":
        result = json_patch(target, body)
    elif ct == "application/merge-patch+json":
        result = merge_patch(target, body)
    elif ct == "application/strategic-merge-patch+json":
        result = strategic_patch(target, body)
    else:
        raise KubeError(415, f"the patch content type {ct!r} is not supported")
    if not isinstance(result, dict):
        raise KubeError(422, "the patch did not produce an object")
    return result
