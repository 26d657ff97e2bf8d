"""Writes through the cluster's Kubernetes API with the real kubectl: server-side apply and its
conflicts, dry runs and diff, kubectl's generators, every JSON patch operation and its
failures, selectors by Kubernetes' grammar, change-cause per revision; each checked against
what the v2 API shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server
from .test_kube import Kube, kube_of, open_vip, security_info, write_kubeconfig
from .workload_helpers import BUSYBOX, Svc, make_cluster, served, until

pytestmark = pytest.mark.xdist_group("kube_writes")


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    base = tmp_path_factory.mktemp("kube_writes")
    srv = Server(data_dir=base / "data", db_url=None)
    with served(srv):
        cluster = make_cluster(srv, machines=1)
        c = srv.client()
        open_vip(srv, c, cluster)
        info = security_info(c, cluster)
        kubeconfig = base / "kubeconfig"
        write_kubeconfig(kubeconfig, cluster, info, info["password"])
        yield kube_of(srv, c, cluster, base, kubeconfig, info)


def services(kube: Kube) -> dict[str, dict[str, Any]]:
    res = kube.c.call("DescribeClusterService", {"clusterId": kube.cluster, "allnamespace": 1})
    assert res["code"] == 0, res
    return {s["serviceName"]: s for s in res["data"]["services"]}


def deployment(name: str, replicas: int, image: str = BUSYBOX, labels: str = "") -> str:
    """A Deployment manifest; `labels` (", k: v") label the Deployment and its pods (one label
    set in the service model)."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}{labels}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}{labels}}}
    spec:
      containers:
      - name: main
        image: {image}
        command: ["sh", "-c", "sleep 3600"]
"""


def test_generators_create_deployment_and_service(kube: Kube) -> None:
    r = kube.run("create", "deployment", "gen", f"--image={BUSYBOX}", "--replicas=2", "--port=80",
                 "--", "httpd", "-f", "-p", "80")  # fmt: skip
    assert "deployment.apps/gen created" in r.stdout
    svc = Svc(kube.c, kube.cluster, "gen")
    info = svc.info()
    assert info["desiredReplicas"] == 2
    c0 = info["containers"][0]
    assert (c0["containerName"], c0["image"]) == ("busybox", BUSYBOX)  # named by the image
    assert c0["command"] == "httpd -f -p 80" and not c0.get("arguments")
    assert svc.info()["accessType"] == "None"
    svc.wait_normal(2)
    r = kube.run("create", "service", "clusterip", "gen", "--tcp=8080:80")
    assert "service/gen created" in r.stdout
    info = svc.info()
    assert info["accessType"] == "ClusterIP"
    assert [(m["lbPort"], m["containerPort"]) for m in info["portMappings"]] == [(8080, 80)]
    assert kube.json("get", "svc", "gen")["spec"]["clusterIP"] == info["serviceIp"]
    # kubectl expose: the Service from the Deployment's selector.
    kube.run("create", "deployment", "exp", f"--image={BUSYBOX}", "--", "httpd", "-f", "-p", "80")
    r = kube.run("expose", "deployment", "exp", "--port=8081", "--target-port=80")
    assert "service/exp exposed" in r.stdout
    exp = Svc(kube.c, kube.cluster, "exp").info()
    assert exp["accessType"] == "ClusterIP"
    assert [(m["lbPort"], m["containerPort"]) for m in exp["portMappings"]] == [(8081, 80)]
    kube.run("delete", "deployment", "exp", "--timeout=120s", timeout=150)
    # Again: AlreadyExists, and nothing changes.
    r = kube.run("create", "deployment", "gen", "--image=other", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    assert svc.info()["containers"][0]["image"] == BUSYBOX
    # What the service model has not: 422 naming the field, nothing made.
    r = kube.run("create", "service", "externalname", "gen", "--external-name=x.example",
                 check=False)  # fmt: skip
    assert r.returncode != 0 and "is invalid: spec.externalName" in r.stderr
    assert svc.info()["accessType"] == "ClusterIP"
    r = kube.run("create", "service", "nodeport", "gen2", "--tcp=80:80", check=False)
    assert r.returncode != 0 and "no Deployment gen2" in r.stderr
    r = kube.run("create", "deployment", "Bad_Name", f"--image={BUSYBOX}", check=False)
    assert r.returncode != 0
    assert {"gen2", "Bad_Name"} & set(services(kube)) == set()
    # dry runs on the server: rendered, nothing made.
    r = kube.run("create", "deployment", "ghost", f"--image={BUSYBOX}", "--dry-run=server",
                 "-o", "json")  # fmt: skip
    shown = json.loads(r.stdout)
    assert shown["spec"]["template"]["spec"]["containers"][0]["image"] == BUSYBOX
    assert shown["metadata"]["name"] == "ghost"
    assert "ghost" not in services(kube)
    assert kube.run("get", "deploy", "ghost", check=False).returncode != 0


def test_service_types_are_access_types(kube: Kube) -> None:
    """NodePort and LoadBalancer Services are the accessTypes of the same names (a LoadBalancer
    with TKE's subnet annotation, SvcLBTypeInner), written by kubectl and shown to it."""
    kube.run("create", "deployment", "np", f"--image={BUSYBOX}", "--", "httpd", "-f", "-p", "80")
    svc = Svc(kube.c, kube.cluster, "np")
    (pod,) = svc.wait_normal(1)
    r = kube.run("create", "service", "nodeport", "np", "--tcp=8083:80")
    assert "service/np created" in r.stdout
    info = svc.info()
    assert info["accessType"] == "NodePort"
    ((pm),) = info["portMappings"]
    assert (pm["lbPort"], pm["containerPort"]) == (8083, 80)
    node_port = pm["nodePort"]
    assert 30000 <= node_port <= 32767
    shown = kube.json("get", "svc", "np")
    assert shown["spec"]["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in shown["spec"]["ports"]] == [(8083, node_port)]
    assert f"8083:{node_port}/TCP" in kube.out("get", "svc", "np")
    # The node port answers on the machine, with the pod behind it (httpd serves its /etc).
    until("the node port", lambda: _hostname(pod["nodeIp"], node_port) == pod["name"], 60)
    # Again: AlreadyExists (whatever its type).
    r = kube.run("create", "service", "clusterip", "np", "--tcp=80:80", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    # To LoadBalancer: the node port is kept, a VIP is given and shown as the ingress.
    kube.run("patch", "svc", "np", "-p", '{"spec": {"type": "LoadBalancer"}}')
    info = until("a running balancer", lambda: (i := svc.info())["lbStatus"] == "Running" and i)
    assert info["accessType"] == "LoadBalancer"
    assert info["portMappings"][0]["nodePort"] == node_port
    vip = info["externalIp"]
    shown = until("the ingress shown", lambda: (o := kube.json("get", "svc", "np"))["status"]
                  ["loadBalancer"].get("ingress") and o)  # fmt: skip
    assert shown["status"]["loadBalancer"]["ingress"] == [{"ip": vip}]
    assert shown["spec"]["type"] == "LoadBalancer"
    row = kube.out("get", "svc", "np", "--no-headers").split()
    assert row[1:5] == ["LoadBalancer", info["serviceIp"], vip, f"8083:{node_port}/TCP"]
    until("the VIP", lambda: _hostname(vip, 8083) == pod["name"], 60)
    # A node port on a ClusterIP Service: 422 naming the field, nothing changes.
    r = kube.run("patch", "svc", "np", "-p", '{"spec": {"type": "ClusterIP"}}', check=False)
    assert r.returncode != 0 and "spec.ports[0].nodePort" in r.stderr
    assert svc.info()["accessType"] == "LoadBalancer"
    # TKE's annotation: the balancer of the VPC's subnet (SvcLBTypeInner).
    vpc = kube.c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    subnet = kube.c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0][
        "unSubnetId"]  # fmt: skip
    annotation = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"
    kube.run("annotate", "svc", "np", f"{annotation}={subnet}")
    info = until("an inner balancer", lambda: (i := svc.info())["lbStatus"] == "Running"
                 and i["accessType"] == "SvcLBTypeInner" and i)  # fmt: skip
    assert info["subnetId"] == subnet and info["externalIp"] != vip
    shown = kube.json("get", "svc", "np")
    assert shown["spec"]["type"] == "LoadBalancer"
    assert shown["metadata"]["annotations"][annotation] == subnet
    # From the v2 API back to NodePort with a port of its own: kubectl shows it.
    spec = {k: info[k] for k in ("serviceName", "namespace", "containers")}
    res = kube.c.call("ModifyClusterService", {
        "clusterId": kube.cluster, **spec, "replicas": 1, "accessType": "NodePort",
        "portMappings": [{"lbPort": 8084, "containerPort": 80, "protocol": "TCP",
                          "nodePort": 30444}]})  # fmt: skip
    assert res["code"] == 0, res
    shown = kube.json("get", "svc", "np")
    assert shown["spec"]["type"] == "NodePort"
    assert annotation not in shown["metadata"].get("annotations", {})
    assert [(p["port"], p["nodePort"]) for p in shown["spec"]["ports"]] == [(8084, 30444)]
    assert shown["status"]["loadBalancer"] == {}
    kube.run("delete", "deployment", "np", "--timeout=120s", timeout=150)


def _hostname(ip: str, port: int) -> str:
    try:
        return httpx.get(f"http://{ip}:{port}/etc/hostname", timeout=3).text.strip()
    except httpx.HTTPError:
        return ""


def test_server_side_apply_conflicts_and_force(kube: Kube, tmp_path: Path) -> None:
    m = tmp_path / "ssa.yaml"
    m.write_text(deployment("ssa", 2))
    r = kube.run("apply", "--server-side", "-f", str(m))
    assert "deployment.apps/ssa serverside-applied" in r.stdout
    svc = Svc(kube.c, kube.cluster, "ssa")
    assert svc.info()["desiredReplicas"] == 2
    obj = kube.json("get", "deploy", "ssa", "--show-managed-fields")
    owners = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert owners["kubectl"]["operation"] == "Apply"
    assert "f:replicas" in owners["kubectl"]["fieldsV1"]["f:spec"]
    # The same again: no conflict with itself.
    kube.run("apply", "--server-side", "-f", str(m))
    # Another manager wanting another value: 409, with Kubernetes' message; nothing changes.
    m3 = tmp_path / "ssa3.yaml"
    m3.write_text(deployment("ssa", 3))
    r = kube.run("apply", "--server-side", "--field-manager=other", "-f", str(m3), check=False)
    assert r.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in r.stderr
    assert svc.info()["desiredReplicas"] == 2
    url = f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments/ssa"
    raw = httpx.patch(url, params={"fieldManager": "other"}, content=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"},
        "spec": {"replicas": 3}}), headers={"Authorization": f"Bearer {kube.token}",
        "Content-Type": "application/apply-patch+yaml"}, verify=kube.verify)  # fmt: skip
    assert raw.status_code == 409
    status = raw.json()
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    # An apply that creates the object answers 201, as Kubernetes does; then 200.
    for code in (201, 200):
        made = httpx.patch(
            f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments/ssa-new",
            params={"fieldManager": "raw"},
            content=deployment("ssa-new", 0),
            headers={"Authorization": f"Bearer {kube.token}",
                     "Content-Type": "application/apply-patch+yaml"},
            verify=kube.verify,
        )  # fmt: skip
        assert made.status_code == code, made.text
        assert made.json()["metadata"]["name"] == "ssa-new"
    assert Svc(kube.c, kube.cluster, "ssa-new").info()["desiredReplicas"] == 0
    kube.run("delete", "deployment", "ssa-new", "--timeout=120s", timeout=150)
    # --force-conflicts takes the field over.
    kube.run("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(m3))
    assert svc.info()["desiredReplicas"] == 3
    obj = kube.json("get", "deploy", "ssa", "--show-managed-fields")
    owners = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert "f:replicas" in owners["other"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners["kubectl"]["fieldsV1"].get("f:spec", {})
    # The first manager applying without the field no longer conflicts: it is other's now.
    m.write_text(deployment("ssa", 2).replace("  replicas: 2\n", "", 1))
    kube.run("apply", "--server-side", "-f", str(m))
    assert svc.info()["desiredReplicas"] == 3
    # A field a manager stops applying, and no one else owns, goes: the label added here.
    m.write_text(deployment("ssa", 2, labels=", tier: web").replace("  replicas: 2\n", "", 1))
    kube.run("apply", "--server-side", "-f", str(m))
    assert svc.info()["labels"].get("tier") == "web"
    m.write_text(deployment("ssa", 2).replace("  replicas: 2\n", "", 1))
    kube.run("apply", "--server-side", "-f", str(m))
    assert "tier" not in svc.info()["labels"]
    # An update takes the fields it changes: scale, then an apply of replicas conflicts with it.
    kube.run("scale", "deployment", "ssa", "--replicas=1")
    assert svc.info()["desiredReplicas"] == 1
    r = kube.run("apply", "--server-side", "--field-manager=other", "-f", str(m3), check=False)
    assert r.returncode != 0 and "conflict with" in r.stderr and ".spec.replicas" in r.stderr
    assert svc.info()["desiredReplicas"] == 1
    # A Service by server-side apply: created, then changed.
    svc_yaml = tmp_path / "svc.yaml"
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: ssa}\nspec:\n"
        "  selector: {app: ssa}\n  ports: [{port: 80, targetPort: 8000, protocol: TCP}]\n"
    )
    svc_yaml.write_text(text)
    kube.run("apply", "--server-side", "-f", str(svc_yaml))
    assert [(m["lbPort"], m["containerPort"]) for m in svc.info()["portMappings"]] == [(80, 8000)]
    svc_yaml.write_text(text.replace("port: 80,", "port: 81,"))
    kube.run("apply", "--server-side", "-f", str(svc_yaml))
    assert [(m["lbPort"], m["containerPort"]) for m in svc.info()["portMappings"]] == [(81, 8000)]
    # Server-side dry run: the result shown, nothing changed.
    m5 = tmp_path / "ssa5.yaml"
    m5.write_text(deployment("ssa", 5))
    r = kube.run("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", str(m5))
    assert "(server dry run)" in r.stdout
    assert svc.info()["desiredReplicas"] == 1
    kube.run("delete", "deployment", "ssa", "--timeout=120s", timeout=150)


def test_diff_and_dry_run_change_nothing(kube: Kube, tmp_path: Path) -> None:
    m = tmp_path / "d.yaml"
    m.write_text(deployment("dry", 1))
    kube.run("apply", "-f", str(m))
    svc = Svc(kube.c, kube.cluster, "dry")
    svc.wait_normal(1)
    before = svc.info()
    assert kube.run("diff", "-f", str(m)).returncode == 0  # nothing to show
    m.write_text(deployment("dry", 2, image="openccs/busybox"))
    r = kube.run("diff", "-f", str(m), check=False)
    assert r.returncode == 1, r.stderr
    assert "-  replicas: 1" in r.stdout and "+  replicas: 2" in r.stdout
    assert "+        image: openccs/busybox\n" in r.stdout
    r = kube.run("diff", "--server-side", "--force-conflicts", "-f", str(m), check=False)
    assert r.returncode == 1, r.stderr
    assert "-  replicas: 1" in r.stdout and "+  replicas: 2" in r.stdout
    # Every write with dryRun=All: validated and shown, the v2 view unchanged.
    r = kube.run("scale", "deployment", "dry", "--replicas=4", "--dry-run=server")
    assert "(server dry run)" in r.stdout
    kube.run("set", "image", "deployment/dry", "main=openccs/busybox", "--dry-run=server")
    kube.run("label", "deployment", "dry", "tier=x", "--dry-run=server")
    kube.run("apply", "-f", str(m), "--dry-run=server")
    r = kube.run("delete", "deployment", "dry", "--dry-run=server")
    assert "(server dry run)" in r.stdout
    after = svc.info()
    for key in ("desiredReplicas", "containers", "labels", "status"):
        assert after[key] == before[key], key
    assert kube.json("get", "deploy", "dry")["spec"]["replicas"] == 1
    # An invalid write in a dry run is refused like the real one.
    bad = tmp_path / "bad.yaml"
    bad.write_text(deployment("dry", 1).replace("    spec:\n", "    spec:\n      hostPID: true\n"))
    r = kube.run("apply", "-f", str(bad), "--dry-run=server", check=False)
    assert r.returncode != 0 and "spec.template.spec.hostPID" in r.stderr
    r = httpx.delete(f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments/dry",
                     params={"dryRun": "Some"}, headers={"Authorization": f"Bearer {kube.token}"},
                     verify=kube.verify)  # fmt: skip
    assert r.status_code == 400 and "dryRun" in r.json()["message"]
    assert "dry" in services(kube)
    kube.run("delete", "-f", str(m), "--timeout=120s", timeout=150)


def _patch(kube: Kube, ops: list[dict[str, Any]], check: bool = True) -> Any:
    return kube.run("patch", "deployment", "jp", "--type=json", "-p", json.dumps(ops),
                    check=check)  # fmt: skip


def test_json_patch_operations_and_failures(kube: Kube, tmp_path: Path) -> None:
    m = tmp_path / "jp.yaml"
    m.write_text(deployment("jp", 1, labels=", a: one"))
    kube.run("apply", "-f", str(m))
    svc = Svc(kube.c, kube.cluster, "jp")
    labels = "/metadata/labels"
    _patch(kube, [{"op": "add", "path": f"{labels}/b", "value": "two"}])
    assert svc.info()["labels"]["b"] == "two"
    _patch(kube, [{"op": "replace", "path": "/spec/replicas", "value": 2}])
    assert svc.info()["desiredReplicas"] == 2
    _patch(kube, [{"op": "copy", "from": f"{labels}/a", "path": f"{labels}/c"}])
    assert svc.info()["labels"]["c"] == "one"
    _patch(kube, [{"op": "move", "from": f"{labels}/c", "path": f"{labels}/d"}])
    got = svc.info()["labels"]
    assert got["d"] == "one" and "c" not in got
    _patch(kube, [{"op": "remove", "path": f"{labels}/d"}])
    assert "d" not in svc.info()["labels"]
    _patch(kube, [{"op": "test", "path": "/spec/replicas", "value": 2},
                  {"op": "replace", "path": "/spec/template/spec/containers/0/image",
                   "value": "openccs/busybox"}])  # fmt: skip
    assert svc.info()["containers"][0]["image"] == "openccs/busybox"
    before = svc.info()
    failures = [
        ([{"op": "test", "path": "/spec/replicas", "value": 7},
          {"op": "replace", "path": "/spec/replicas", "value": 3}], "test"),
        ([{"op": "replace", "path": "/spec/template/spec/containers/5/image", "value": "x"}],
         "5"),
        ([{"op": "replace", "path": "/spec/template/spec/containers/first/image", "value": "x"}],
         "first"),
        ([{"op": "add", "path": "/spec/template/spec/containers/9", "value": {}}], "list"),
        ([{"op": "replace", "path": f"{labels}/missing", "value": "x"}], "missing"),
        ([{"op": "remove", "path": f"{labels}/missing"}], "missing"),
        ([{"op": "move", "from": f"{labels}/missing", "path": f"{labels}/e"}], "missing"),
        ([{"op": "copy", "from": "/spec/nothing", "path": f"{labels}/e"}], "nothing"),
        ([{"op": "frobnicate", "path": "/spec/replicas"}], "frobnicate"),
        ([{"op": "add", "path": "spec/replicas", "value": 3}], "/"),
    ]  # fmt: skip
    for ops, word in failures:
        r = _patch(kube, ops, check=False)
        assert r.returncode != 0, ops
        assert "InternalError" not in r.stderr and "500" not in r.stderr, r.stderr
        assert word in r.stderr, (ops, r.stderr)
    auth = {"Authorization": f"Bearer {kube.token}", "Content-Type": "application/json-patch+json"}
    url = f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments/jp"
    for ops, _ in failures:
        r = httpx.patch(url, content=json.dumps(ops), headers=auth, verify=kube.verify)
        assert r.status_code == 422 and r.json()["reason"] == "Invalid", (ops, r.text)
    r = httpx.patch(url, content=json.dumps({"op": "add"}), headers=auth, verify=kube.verify)
    assert r.status_code == 400
    after = svc.info()
    for key in ("desiredReplicas", "containers", "labels"):
        assert after[key] == before[key], key
    # Merge patch (RFC 7386) and strategic merge patch reach the same service.
    kube.run("patch", "deployment", "jp", "--type=merge", "-p",
             '{"metadata": {"labels": {"b": null, "e": "five"}}}')  # fmt: skip
    got = svc.info()["labels"]
    assert got["e"] == "five" and "b" not in got
    kube.run("patch", "deployment", "jp", "-p", json.dumps({"spec": {"template": {"spec": {
        "containers": [{"name": "main", "env": [{"name": "K", "value": "v"}]}]}}}}))  # fmt: skip
    c0 = svc.info()["containers"][0]
    assert c0["envs"] == [{"name": "K", "value": "v"}] and c0["image"] == "openccs/busybox"
    kube.run("delete", "-f", str(m), "--timeout=120s", timeout=150)


def test_selectors_by_the_kubernetes_grammar(kube: Kube, tmp_path: Path) -> None:
    for name, tier in (("sel-a", "front"), ("sel-b", "back")):
        m = tmp_path / f"{name}.yaml"
        m.write_text(deployment(name, 1, labels=f", tier: {tier}, size: '{len(tier)}'"))
        kube.run("apply", "-f", str(m))
    # The v2 API's labels of every service, and what each selector must pick from them.
    v2 = {n: Svc(kube.c, kube.cluster, n).info()["labels"] for n in services(kube)}
    assert v2["sel-a"]["tier"] == "front" and v2["sel-b"]["size"] == "4"

    def names(*args: str) -> set[str]:
        return {d["metadata"]["name"] for d in kube.json("get", "deploy", *args)["items"]}

    def size(labels: dict[str, str]) -> int:
        return int(labels.get("size", "-1"))

    cases = {
        "tier in(front)": lambda lb: lb.get("tier") == "front",
        "tier notin (front),app": lambda lb: lb.get("tier") != "front" and "app" in lb,
        "tier,!missing,tier!=back": lambda lb: lb.get("tier") == "front",
        "size>4": lambda lb: size(lb) > 4,
        "size<5": lambda lb: "size" in lb and size(lb) < 5,
        "tier in (front,back)": lambda lb: lb.get("tier") in ("front", "back"),
        "!tier": lambda lb: "tier" not in lb,
    }
    for text, pick in cases.items():
        assert names("-l", text) == {n for n, lb in v2.items() if pick(lb)}, text
    assert names("-l", "size>4") == {"sel-a"}
    assert names("--field-selector", "metadata.name=sel-b") == {"sel-b"}
    assert names("--field-selector", "metadata.name!=sel-b", "-l", "tier") == {"sel-a"}
    for bad, says in (("a=b=c", "found '='"), ("!!a", "found '!'"), ("a in x", "expected: '('"),
                      ("a b", "expected: in, notin"), ("-x", "")):  # fmt: skip
        r = kube.run("get", "deploy", "-l", bad, check=False)
        assert r.returncode != 0 and says in r.stderr, (bad, r.stderr)
    r = kube.run("get", "deploy", "--field-selector", "spec.replicas=1", check=False)
    assert r.returncode != 0 and "field label not supported: spec.replicas" in r.stderr
    r = kube.run("get", "pods", "--field-selector", "status.phase=Running", "-l", "app=sel-a")
    assert r.returncode == 0
    for name in ("sel-a", "sel-b"):
        kube.run("delete", "deployment", name, "--timeout=120s", timeout=150)


def test_change_cause_per_revision(kube: Kube, tmp_path: Path) -> None:
    m = tmp_path / "cc.yaml"
    m.write_text(deployment("cc", 1))
    kube.run("apply", "-f", str(m))
    svc = Svc(kube.c, kube.cluster, "cc")
    svc.wait_normal(1)
    kube.run("annotate", "deployment", "cc", "kubernetes.io/change-cause=first release")
    kube.run("set", "image", "deployment/cc", "main=openccs/busybox")
    kube.run("annotate", "deployment", "cc", "--overwrite", "kubernetes.io/change-cause=new image")
    assert svc.info()["containers"][0]["image"] == "openccs/busybox"

    def history() -> dict[str, str]:
        out = kube.out("rollout", "history", "deployment/cc")
        rows = [line.split(None, 1) for line in out.splitlines() if line[:1].isdigit()]
        return {r[0]: r[1].strip() if len(r) > 1 else "" for r in rows}

    assert until("two revisions", lambda: len(history()) == 2)
    assert history() == {"1": "first release", "2": "new image"}
    # A change through the v2 API: its revision has the Deployment's change-cause, as the
    # deployment controller gives it; the earlier ones keep theirs.
    svc.call("ModifyClusterServiceImage", image="docker.io/openccs/busybox:latest")
    assert until("three revisions", lambda: len(history()) == 3)
    assert history() == {"1": "first release", "2": "new image", "3": "new image"}
    kube.run("annotate", "deployment", "cc", "--overwrite", "kubernetes.io/change-cause=back")
    assert history() == {"1": "first release", "2": "new image", "3": "back"}
    kube.run("delete", "-f", str(m), "--timeout=120s", timeout=150)
