"""The Kubernetes API's pure pieces: patches, selectors, protobuf metadata, field names."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openccs.kube import fields, proto
from openccs.kube.app import SUBRESOURCES
from openccs.kube.errors import KubeError
from openccs.kube.kinds import KINDS, READ
from openccs.kube.patch import apply_patch
from openccs.kube.selectors import SelectorError, field_selector, label_selector
from openccs.kube.writes import VERB_HANDLER, WRITES, Options, k8s_field

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


def test_strategic_merge_patch_directives() -> None:
    smp = "application/strategic-merge-patch+json"
    spec = "spec"
    # A new container placed by $setElementOrder, as kubectl apply sends it.
    patch = {spec: {"template": {spec: {
        "$setElementOrder/containers": [{"name": "x"}, {"name": "n"}, {"name": "y"}],
        "containers": [{"name": "n", "image": "i9"}]}}}}  # fmt: skip
    out = apply_patch(DEPLOY, smp, patch)
    assert [c["name"] for c in out[spec]["template"][spec]["containers"]] == ["x", "n", "y"]
    # $patch: replace on a list element: the list is the patch's.
    patch = {spec: {"template": {spec: {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "i"}]}}}}  # fmt: skip
    out = apply_patch(DEPLOY, smp, patch)
    assert out[spec]["template"][spec]["containers"] == [{"name": "only", "image": "i"}]
    # $patch: delete on a map, $retainKeys, $deleteFromPrimitiveList.
    out = apply_patch(DEPLOY, smp, {"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in out["metadata"]
    dep = {spec: {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
           "metadata": {"finalizers": ["a", "b"]}}  # fmt: skip
    out = apply_patch(dep, smp, {spec: {"strategy": {"$retainKeys": ["type"],
                                                     "type": "Recreate"}}})  # fmt: skip
    assert out[spec]["strategy"] == {"type": "Recreate"}
    out = apply_patch(dep, smp, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]
    # A Service's ports merge by port.
    svc = {spec: {"ports": [{"port": 80, "targetPort": 8000}, {"port": 81, "targetPort": 1}]}}
    out = apply_patch(svc, smp, {spec: {"ports": [{"port": 81, "targetPort": 2}]}})
    assert out[spec]["ports"] == [{"port": 80, "targetPort": 8000}, {"port": 81, "targetPort": 2}]


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
        apply_patch(DEPLOY, "application/apply-patch+yaml", {})  # fields.apply's, not a patch
    assert err.value.code == 415


CONTAINERS = "/spec/template/spec/containers"


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ({"op": "add", "path": "/metadata/labels/c", "value": "3"},
         lambda o: o["metadata"]["labels"]["c"] == "3"),
        ({"op": "add", "path": f"{CONTAINERS}/1", "value": {"name": "z"}},
         lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]]
         == ["x", "z", "y"]),
        ({"op": "add", "path": f"{CONTAINERS}/-", "value": {"name": "z"}},
         lambda o: o["spec"]["template"]["spec"]["containers"][-1] == {"name": "z"}),
        ({"op": "remove", "path": f"{CONTAINERS}/0"},
         lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]] == ["y"]),
        ({"op": "replace", "path": "/spec/replicas", "value": 9},
         lambda o: o["spec"]["replicas"] == 9),
        ({"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/m"},
         lambda o: o["metadata"]["labels"] == {"b": "2", "m": "1"}),
        ({"op": "copy", "from": f"{CONTAINERS}/0/image", "path": f"{CONTAINERS}/1/image"},
         lambda o: o["spec"]["template"]["spec"]["containers"][1]["image"] == "i1"),
        ({"op": "test", "path": "/metadata/name", "value": "web"}, lambda o: o == DEPLOY),
        ({"op": "add", "path": "/metadata/labels/x~1y~0z", "value": "e"},  # escaped pointer
         lambda o: o["metadata"]["labels"]["x/y~z"] == "e"),
    ],
)  # fmt: skip
def test_json_patch_each_operation(op: dict[str, Any], check: Any) -> None:
    out = apply_patch(DEPLOY, "application/json-patch+json", [op])
    assert check(out)
    assert DEPLOY["spec"]["replicas"] == 2  # the target is not changed in place


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": f"{CONTAINERS}/7/image", "value": "z"},  # out of range
        {"op": "replace", "path": f"{CONTAINERS}/x/image", "value": "z"},  # not a number
        {"op": "add", "path": f"{CONTAINERS}/01", "value": {}},  # a leading zero
        {"op": "add", "path": f"{CONTAINERS}/-1", "value": {}},
        {"op": "add", "path": f"{CONTAINERS}/3", "value": {}},  # past the end
        {"op": "replace", "path": "/metadata/labels/zz", "value": "z"},  # missing
        {"op": "remove", "path": "/metadata/labels/zz"},
        {"op": "remove", "path": f"{CONTAINERS}/2"},
        {"op": "move", "from": "/metadata/labels/zz", "path": "/metadata/labels/q"},
        {"op": "move", "from": "/metadata", "path": "/metadata/labels/q"},  # into itself
        {"op": "copy", "from": "/nothing", "path": "/metadata/labels/q"},
        {"op": "add", "path": "/nothing/deeper", "value": 1},  # no parent
        {"op": "test", "path": "/spec/replicas", "value": "2"},  # a string is not 2
        {"op": "test", "path": "/nothing", "value": 1},
        {"op": "bogus", "path": "/spec"},
        {"path": "/spec"},
        {"op": "add", "path": "/spec/x"},  # no value
        {"op": "add", "path": "spec", "value": 1},  # not a pointer
        {"op": "replace", "path": f"{CONTAINERS}/-", "value": {}},
    ],
)
def test_json_patch_failures_are_422(op: dict[str, Any]) -> None:
    with pytest.raises(KubeError) as err:
        apply_patch(DEPLOY, "application/json-patch+json", [op])
    assert err.value.code == 422 and err.value.status()["reason"] == "Invalid"


def test_json_patch_that_is_no_patch_is_400() -> None:
    for body in ({"op": "add"}, ["add"], "x"):
        with pytest.raises(KubeError) as err:
            apply_patch(DEPLOY, "application/json-patch+json", body)
        assert err.value.code == 400


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


LABELLED = {"metadata": {"name": "p", "labels": {"app": "web", "n": "5", "e": ""}}}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("app in(web)", True), ("app in (web,db)", True), ("app notin(web)", False),
        ("app=web , n", True), ("app==web", True), ("app!=web", False), ("missing!=x", True),
        ("missing notin (x)", True), ("missing in (x)", False), ("!missing", True),
        ("!app", False), ("n>4", True), ("n<5", False), ("missing>1", False), ("app>1", False),
        ("e=", True), ("e in ()", True), ("e in (,x)", True), ("app in (x,)", False),
        ("example.com/app", False), ("in", False), ("in=x,app", False), ("", True),
        ("app,n", True),
    ],
)  # fmt: skip
def test_label_selector_grammar(text: str, matches: bool) -> None:
    assert label_selector(text)(LABELLED) is matches


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!!a", "found '!', expected: identifier"),
        ("a in x", "found 'x' expected: '('"),
        ("a in (x", "found '', expected: ',' or ')'"),
        ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "expected: identifier after ','"),
        (",a", "expected: !, identifier, or 'end of string'"),
        ("a>b", "the value must be an integer"),
        ("a=>b", "found '>', expected: identifier"),
        ("a!b", "found '!', expected: in, notin"),
        ("-a", "name part must consist of"),
        ("a/b/c", "invalid label key"),
        ("Ex.com/a", "prefix part"),
        ("a=-b", "invalid label value"),
        ("a=" + "x" * 64, "invalid label value"),
        ("a=(b)", "found '(', expected: identifier"),
    ],
)
def test_label_selector_refusals(text: str, says: str) -> None:
    with pytest.raises(SelectorError) as err:
        label_selector(text)
    assert says in str(err.value)


def test_field_selector_grammar() -> None:
    pod = {"metadata": {"name": "a,b=c", "namespace": "ns"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}  # fmt: skip
    assert field_selector(r"metadata.name=a\,b\=c", "pods")(pod)
    assert field_selector("metadata.namespace==ns,spec.nodeName!=n2", "pods")(pod)
    assert not field_selector("status.phase!=Running", "pods")(pod)
    for bad, says in (
        ("spec.replicas=1", "field label not supported: spec.replicas"),
        ("metadata.name=a,b", "can't understand 'b'"),
        (r"metadata.name=a\x", "invalid escape sequence"),
        ("metadata.name", "can't understand"),
        ("metadata.name=a=b", "unescaped"),
    ):
        with pytest.raises(SelectorError) as err:
            field_selector(bad, "pods")
        assert says in str(err.value), bad
    with pytest.raises(SelectorError):
        field_selector("spec.nodeName=n1", "deployments")


def _entry(manager: str, op: str = "Apply") -> fields.Entry:
    return fields.Entry(manager, op, "apps/v1", "2026-11-29T00:00:00Z")


def test_apply_owns_fields_and_conflicts_by_the_kubernetes_message() -> None:
    first = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "labels": {"a": "1"}},
             "spec": {"replicas": 2}}  # fmt: skip
    obj, managers = fields.apply(None, [], first, _entry("kubectl"), force=False)
    assert obj == first
    tree = managers[0].render()["fieldsV1"]
    assert tree == {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:replicas": {}}}
    other = {**first, "metadata": {"name": "web"}, "spec": {"replicas": 3}}
    with pytest.raises(KubeError) as err:
        fields.apply(obj, managers, other, _entry("other"), force=False)
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    )
    # The same value is shared, not a conflict.
    same = {**first, "metadata": {"name": "web"}, "spec": {"replicas": 2}}
    _, shared = fields.apply(obj, managers, same, _entry("other"), force=False)
    assert all(("f:spec", "f:replicas") in e.paths for e in shared)
    # Forced: the field changes hands; the first manager keeps the rest.
    obj2, managers2 = fields.apply(obj, managers, other, _entry("other"), force=True)
    assert obj2["spec"]["replicas"] == 3
    owners = {e.manager: e.paths for e in managers2}
    assert owners == {"kubectl": {("f:metadata", "f:labels", "f:a")},
                      "other": {("f:spec", "f:replicas")}}  # fmt: skip
    # What a manager no longer applies, and nobody else owns, is removed.
    bare = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    obj3, managers3 = fields.apply(obj2, managers2, bare, _entry("kubectl"), force=False)
    assert "labels" not in obj3["metadata"] and obj3["spec"]["replicas"] == 3
    assert {e.manager for e in managers3} == {"other"}


def test_apply_replaces_a_list_element_it_no_longer_applies() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8000, "protocol": "TCP"}]}}  # fmt: skip
    obj, managers = fields.apply(None, [], svc, _entry("kubectl"), force=False)
    moved = copy.deepcopy(svc)
    moved["spec"]["ports"][0]["port"] = 81
    obj, managers = fields.apply(obj, managers, moved, _entry("kubectl"), force=False)
    assert obj["spec"]["ports"] == [{"port": 81, "targetPort": 8000, "protocol": "TCP"}]
    assert ("f:spec", "f:ports", 'k:{"port":81,"protocol":"TCP"}', ".") in managers[0].paths


def test_update_takes_the_fields_it_changes_and_conflicts_name_it() -> None:
    applied = {"spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "web", "image": "a"}]}}}}  # fmt: skip
    obj, managers = fields.apply(None, [], applied, _entry("kubectl"), force=False)
    changed = {"spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "web", "image": "b"}]}}}}  # fmt: skip
    scale = fields.Entry("kubectl-set", "Update", "apps/v1", "t")
    managers = fields.update(obj, changed, managers, scale)
    image = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    owners = {e.manager: e.paths for e in managers}
    assert image in owners["kubectl-set"] and image not in owners["kubectl"]
    with pytest.raises(KubeError) as err:
        fields.apply(changed, managers, applied, _entry("kubectl"), force=False)
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1:'
        ' .spec.template.spec.containers[name="web"].image'
    )
    two = fields.conflict([(e, p) for e in managers for p in sorted(e.paths)
                           if p[-1] != "."])  # fmt: skip
    assert two.message == (
        'Apply failed with 3 conflicts: conflicts with "kubectl":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="web"].name\n'
        'conflicts with "kubectl-set" using apps/v1:\n'
        '- .spec.template.spec.containers[name="web"].image'
    )
    tree = fields.to_fields_v1(owners["kubectl"])
    assert fields.from_fields_v1(tree) == owners["kubectl"]


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


# What kubectl 1.32 sends for `kubectl create deployment x --image=busybox --replicas=2`.
CREATE_DEPLOYMENT = (
    b'k8s\x00\n\x15\n\x07apps/v1\x12\nDeployment\x12\xa7\x01\n\x1b\n\x01x\x12\x00\x1a\x00"'
    b"\x00*\x002\x008\x00B\x00Z\x08\n\x03app\x12\x01x\x12z\x08\x02\x12\n\n\x08\n\x03app\x12\x01"
    b'x\x1ab\n\x1a\n\x00\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00Z\x08\n\x03app\x12\x01x\x12D'
    b"\x12&\n\x07busybox\x12\x07busybox*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01"
    b"\x00\xa2\x01\x00\x1a\x002\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00"
    b'\x9a\x01\x00\xc2\x01\x00"\x02\n\x00(\x008\x00\x1a\x0c\x08\x00\x10\x00\x18\x00 \x00(\x00'
    b'8\x00\x1a\x00"\x00'
)


def test_protobuf_deployment_as_kubectl_create_sends_it() -> None:
    out = proto.decode_object(CREATE_DEPLOYMENT)
    assert out == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"app": "x"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                 "template": {"metadata": {"labels": {"app": "x"}},
                              "spec": {"containers": [{"name": "busybox", "image": "busybox"}]}}},
    }  # fmt: skip
    # hostNetwork (PodSpec field 11) set: named, so the service model refuses it by name.
    net = CREATE_DEPLOYMENT.replace(b"X\x00`", b"X\x01`")
    assert proto.decode_object(net)["spec"]["template"]["spec"]["hostNetwork"] is True
    # A field this reader does not know, given: refused, never dropped.
    unknown = CREATE_DEPLOYMENT.replace(b"\xc2\x01\x00", b"\xf8\x07\x01")
    with pytest.raises(ValueError, match=r"field 127 of Deployment\.spec\.template\.spec"):
        proto.decode_object(unknown)


def test_v2_parameters_named_as_kubernetes_fields() -> None:
    assert k8s_field("containers.1.memoryLimits", "Deployment") == (
        "spec.template.spec.containers[1].resources.limits.memory"
    )
    assert k8s_field("replicas", "Deployment") == "spec.replicas"
    assert k8s_field("portMappings.0.containerPort", "Service") == "spec.ports[0].targetPort"


def test_write_options_from_the_query() -> None:
    opts = Options.from_query({"dryRun": "All", "fieldManager": "me", "force": "true"})
    assert opts == Options(dry_run=True, field_manager="me", force=True)
    # Without a field manager, the client's name (as the API server derives it).
    assert Options.from_query({}, "kubectl/v1.32.4 (linux/amd64)").field_manager == "kubectl"
    # A DELETE's DeleteOptions carry dryRun in the body.
    assert Options.from_query({}, "", {"dryRun": ["All"]}).dry_run
    for q in ({"dryRun": "Some"}, {"fieldManager": "m" * 129}, {"force": "yes"}):
        with pytest.raises(KubeError) as err:
            Options.from_query(q)
        assert err.value.code == 400


def test_each_kind_writes_the_verbs_discovery_lists() -> None:
    # The kinds' table says which write verbs a kind has (discovery shows them); the writes
    # have a handler for each of those verbs and for no other.
    assert set(WRITES) == set(KINDS)
    for name, kind in KINDS.items():
        listed = set(kind.verbs) - set(READ)
        assert listed <= set(VERB_HANDLER), name
        assert WRITES[name].verbs() == listed, name
    # The subresources discovery lists without a handler of their own (logs, streams) are
    # the writes' ones, with a handler for each verb listed.
    served = {(p, n): s for (p, n), s in SUBRESOURCES.items() if not s.serve}
    assert {(p, n) for p, w in WRITES.items() for n in w.subresources} == set(served)
    for (parent, name), sub in served.items():
        handlers = WRITES[parent].subresources[name]
        have = {"get": handlers.get, "create": handlers.create,
                "update": handlers.change, "patch": handlers.change}  # fmt: skip
        assert {v for v, h in have.items() if h is not None} == set(sub.verbs), (parent, name)
