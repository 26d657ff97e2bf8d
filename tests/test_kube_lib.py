"""The Kubernetes API's pure pieces: patches, selectors, protobuf metadata, field names."""

from __future__ import annotations

import pytest

from openccs.kube import proto
from openccs.kube.errors import KubeError
from openccs.kube.patch import apply_patch
from openccs.kube.selectors import SelectorError, field_selector, label_selector
from openccs.kube.writes import k8s_field

DEPLOY = {
    "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {"name": "x", "image": "i1", "env": [{"name": "E", "value": "1"}]},
                    {"name": "y", "image": "i2"},
                ]
            }
        },
    },
}


def test_strategic_merge_patch_merges_containers_by_name() -> None:
    patch = {
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "x"}, {"name": "y"}],
            "containers": [{"name": "y", "image": "i3"}]}}},
        "metadata": {"labels": {"a": None}},
    }  # fmt: skip
    out = apply_patch(DEPLOY, "application/strategic-merge-patch+json", patch)
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("x", "i1"), ("y", "i3")]
    assert cs[0]["env"] == [{"name": "E", "value": "1"}]
    assert out["metadata"]["labels"] == {"b": "2"}
    gone = apply_patch(DEPLOY, "application/strategic-merge-patch+json",
                       {"spec": {"template": {"spec": {"containers": [
                           {"name": "x", "$patch": "delete"}]}}}})  # fmt: skip
    assert [c["name"] for c in gone["spec"]["template"]["spec"]["containers"]] == ["y"]
    assert DEPLOY["spec"]["template"]["spec"]["containers"][1]["image"] == "i2"  # untouched


def test_merge_and_json_patch() -> None:
    out = apply_patch(DEPLOY, "application/merge-patch+json", {"spec": {"replicas": 5}})
    assert out["spec"]["replicas"] == 5 and out["metadata"] == DEPLOY["metadata"]
    ops = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "z"},
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "test", "path": "/spec/replicas", "value": 2},
    ]
    out = apply_patch(DEPLOY, "application/json-patch+json", ops)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "z"
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    with pytest.raises(KubeError) as err:
        bad = [{"op": "test", "path": "/spec/replicas", "value": 3}]
        apply_patch(DEPLOY, "application/json-patch+json", bad)
    assert err.value.code == 422
    with pytest.raises(KubeError) as err:
        apply_patch(DEPLOY, "application/apply-patch+yaml", {})
    assert err.value.code == 415


def test_label_and_field_selectors() -> None:
    obj = {"metadata": {"name": "p", "labels": {"app": "web", "tier": "f"}},
           "spec": {"nodeName": "10.0.0.3"}, "status": {"phase": "Running"}}  # fmt: skip
    assert label_selector("app=web,tier in (f, b)")(obj)
    assert not label_selector("app=web,tier notin (f)")(obj)
    assert label_selector("app,!missing")(obj) and not label_selector("!app")(obj)
    assert label_selector("app!=db")(obj) and label_selector("app==web")(obj)
    assert label_selector("")(obj)
    with pytest.raises(SelectorError):
        label_selector("a b c")
    assert field_selector("spec.nodeName=10.0.0.3,status.phase!=Failed")(obj)
    assert not field_selector("metadata.name=q")(obj)
    with pytest.raises(SelectorError):
        field_selector("metadata.name")


def test_protobuf_metadata_of_a_namespace() -> None:
    def field(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    meta = field(1, b"team") + field(11, field(1, b"k") + field(2, b"v"))
    raw = field(1, meta)
    type_meta = field(1, b"v1") + field(2, b"Namespace")
    body = proto.MAGIC + field(1, type_meta) + field(2, raw)
    out = proto.decode_object(body)
    assert out == {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team", "labels": {"k": "v"}}}  # fmt: skip
    with pytest.raises(ValueError):
        proto.decode_object(b"{}")


def test_v2_parameters_named_as_kubernetes_fields() -> None:
    assert k8s_field("containers.1.memoryLimits", "Deployment") == (
        "spec.template.spec.containers[1].resources.limits.memory"
    )
    assert k8s_field("replicas", "Deployment") == "spec.replicas"
    assert k8s_field("portMappings.0.containerPort", "Service") == "spec.ports[0].targetPort"
