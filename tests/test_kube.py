"""The cluster's Kubernetes API driven by the real kubectl, with a kubeconfig made from
DescribeClusterSecurityInfo; every result checked against the v2 API's view of the cluster."""

from __future__ import annotations

import base64
import json
import os
import select
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs.client import Client

from .conftest import Server, unique_cluster_cidr
from .workload_helpers import (
    BUSYBOX,
    Svc,
    create,
    http_get,
    in_machine,
    make_cluster,
    served,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("kube")


@dataclass
class Kube:
    srv: Server
    c: Client
    cluster: str
    home: Path
    kubeconfig: Path
    endpoint: str
    token: str
    ca: Path

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home),
                "KUBECONFIG": str(kubeconfig or self.kubeconfig)}  # fmt: skip

    def run(self, *args: str, check: bool = True, timeout: float = 150,
            kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        r = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout,
                           env=self.env(kubeconfig))  # fmt: skip
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["kubectl", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=self.env())  # fmt: skip

    @property
    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def security_info(c: Client, cluster: str) -> dict[str, Any]:
    res = c.call("DescribeClusterSecurityInfo", {"clusterId": cluster})
    assert res["code"] == 0, res
    return dict(res["data"])


def external_endpoint(c: Client, cluster: str) -> Any:
    res = c.call("DescribeCluster", {"clusterIds": [cluster]})
    return res["data"]["clusters"][0]["clusterExternalEndpoint"]


def open_vip(srv: Server, c: Client, cluster: str, operation: str = "Create") -> None:
    res = c.call("OperateClusterVip", {"clusterId": cluster, "operation": operation})
    assert res["code"] == 0, res
    assert srv.wait_task(res["data"]["requestId"])["status"] == "succ"


def write_kubeconfig(path: Path, cluster: str, info: dict[str, Any], token: str) -> None:
    ca = base64.b64encode(info["certificationAuthority"].encode()).decode()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {
            "server": info["clusterExternalEndpoint"], "certificate-authority-data": ca}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin"}}],
    }))  # fmt: skip


def kube_of(
    srv: Server, c: Client, cluster: str, base: Path, kubeconfig: Path, info: dict[str, Any]
) -> Kube:
    """The Kube of a cluster whose external address is open (`info`: its security info),
    with a home of its own under `base` and the cluster's CA written there."""
    home = base / "home"
    home.mkdir()
    ca = base / "ca.pem"
    ca.write_text(info["certificationAuthority"])
    return Kube(srv, c, cluster, home, kubeconfig, info["clusterExternalEndpoint"],
                info["password"], ca)  # fmt: skip


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    base = tmp_path_factory.mktemp("kube")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--health-interval", "1"))
    with served(srv):
        cluster = make_cluster(srv, machines=2)
        c = srv.client()
        # Credentials exist before any external address: the address is empty, then opened.
        info = security_info(c, cluster)
        assert info["userName"] == "admin" and len(info["password"]) >= 16
        assert info["certificationAuthority"].startswith("-----BEGIN CERTIFICATE-----")
        assert info["clusterExternalEndpoint"] == ""
        assert external_endpoint(c, cluster) is None
        open_vip(srv, c, cluster)
        info = security_info(c, cluster)
        assert info["clusterExternalEndpoint"].startswith("https://127.0.0.1:")
        assert external_endpoint(c, cluster) == info["clusterExternalEndpoint"]
        kubeconfig = base / "kubeconfig"
        write_kubeconfig(kubeconfig, cluster, info, info["password"])
        yield kube_of(srv, c, cluster, base, kubeconfig, info)


@pytest.fixture(scope="module")
def web_svc(kube: Kube) -> Svc:
    svc = create(kube.c, kube.cluster, web("web", replicas=3))
    svc.wait_normal(3)
    return svc


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()[1:] if line.strip()]


def test_get_lists_what_the_v2_api_shows(kube: Kube, web_svc: Svc) -> None:
    nodes = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})["data"]["nodes"]
    out = kube.out("get", "nodes,pods,svc,deploy", "-A", "-o", "wide")
    assert "NOMINATED NODE" in out and "CLUSTER-IP" in out and "UP-TO-DATE" in out
    rows = {r[1] if r[0] == "default" else r[0]: r for r in _table(out) if len(r) > 2}
    for n in nodes:
        assert rows[f"node/{n['lanIp']}"][1] == "Ready"
    pods = web_svc.pods()
    for p in pods:
        row = rows[f"pod/{p['name']}"]
        assert row[0] == "default" and row[2:4] == ["1/1", "Running"]
        assert p["ip"] in row and p["nodeIp"] in row
    info = web_svc.info()
    svc_row = rows["service/web"]
    assert svc_row[2:5] == ["ClusterIP", info["serviceIp"], "<none>"] and "8080/TCP" in svc_row
    assert rows["deployment.apps/web"][2:5] == ["3/3", "3", "3"]
    # The same through JSON, and with selectors.
    listed = kube.json("get", "pods", "-l", "qcloud-app=web")["items"]
    assert {p["metadata"]["name"]: p["status"]["podIP"] for p in listed} == {
        p["name"]: p["ip"] for p in pods
    }
    one_node = pods[0]["nodeIp"]
    on_node = kube.json("get", "pods", "-A", "--field-selector", f"spec.nodeName={one_node}")
    assert {p["metadata"]["name"] for p in on_node["items"]} == {
        p["name"] for p in pods if p["nodeIp"] == one_node
    }
    assert kube.json("get", "pods", "-l", "qcloud-app=nothing")["items"] == []
    ns = kube.out("get", "namespaces")
    assert "default" in ns and "kube-system" in ns
    # describe: the deployment with its replica set and events, a pod with its events.
    text = kube.out("describe", "deployment", "web")
    assert "3 desired | 3 updated | 3 total | 3 available" in text
    assert "NewReplicaSet:" in text and "ScalingReplicaSet" in text
    text = kube.out("describe", "pod", pods[0]["name"])
    assert pods[0]["nodeIp"] in text
    assert "Started" in text and "Successfully assigned" in text
    assert "Ready" in kube.out("describe", "node", one_node)
    eps = kube.json("get", "endpoints", "web")["subsets"][0]["addresses"]
    assert {a["ip"] for a in eps} == {p["ip"] for p in pods}
    assert kube.run("get", "pod", "nothing-here", check=False).returncode != 0


def test_logs_tail_follow_since_and_container(kube: Kube) -> None:
    loop = "i=0; while true; do echo {name}-$i; i=$((i+1)); sleep 0.3; done"
    svc = create(kube.c, kube.cluster, {
        "serviceName": "talker", "replicas": 1, "accessType": "None",
        "containers": [
            {"containerName": "a", "image": BUSYBOX, "command": "sh",
             "arguments": ["-c", loop.format(name="a")]},
            {"containerName": "b", "image": BUSYBOX, "command": "sh",
             "arguments": ["-c", loop.format(name="b")]},
        ],
    })  # fmt: skip
    pod = svc.wait_normal(1)[0]["name"]
    until("some output", lambda: kube.run("logs", pod, "-c", "a").stdout.count("\n") >= 5)
    # Two containers: kubectl picks the first and says so; the server asks for a name.
    r = kube.run("logs", pod)
    assert 'Defaulted container "a" out of: a, b' in r.stderr and r.stdout.startswith("a-0")
    r2 = httpx.get(
        f"{kube.endpoint}/api/v1/namespaces/default/pods/{pod}/log",
        headers={"Authorization": f"Bearer {kube.token}"},
        verify=kube.verify,
    )
    assert r2.status_code == 400 and "choose one of: [a b]" in r2.json()["message"]
    tail = kube.out("logs", pod, "-c", "a", "--tail=2").splitlines()
    assert len(tail) == 2 and all(line.startswith("a-") for line in tail)
    assert all(line.startswith("b-") for line in kube.out("logs", pod, "-c", "b").splitlines())
    # The v2 API reads the same log.
    v2 = svc.call("DescribeInstanceLog", podName=pod, containerName="a")["podLog"][0]
    v2_lines = v2["containerLog"][0]["log"].splitlines()
    all_lines = kube.out("logs", pod, "-c", "a").splitlines()
    assert v2_lines[:5] == all_lines[:5]
    # sinceTime: only what came after.
    time.sleep(1.5)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    recent = kube.out("logs", pod, "-c", "a", f"--since-time={stamp}").splitlines()
    assert 0 < len(recent) < len(kube.out("logs", pod, "-c", "a").splitlines())
    # follow: lines written after the command started keep arriving.
    follow = Lines(kube.popen("logs", "-f", pod, "-c", "a", "--tail=1"))
    try:
        first_line = follow.next(30)
        assert first_line is not None
        first = int(first_line.split("-")[1])
        follow.until(f"a-{first + 5}", 30)
    finally:
        follow.close()
    svc.call("DeleteClusterService")


class Lines:
    """Lines of a running command's output, read without Python's buffering (so select
    sees what is still to be read)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self.fd, self.buf = proc, proc.stdout.fileno(), b""

    def next(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def until(self, want: str, timeout: float = 90) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(deadline - time.monotonic())
            if line is None:
                break
            seen.append(line)
            if want in line:
                return seen
        raise AssertionError(f"{want!r} not seen in {seen}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_watch_sees_a_scale(kube: Kube, web_svc: Svc) -> None:
    deploys = Lines(kube.popen("get", "deployment", "web", "-w"))
    pods = Lines(kube.popen("get", "pods", "-l", "qcloud-app=web", "-w", "--output-watch-events"))
    try:
        deploys.until("3/3")
        pods.until("Running")
        kube.run("scale", "deployment", "web", "--replicas=4")
        assert web_svc.info()["desiredReplicas"] == 4
        deploys.until("4/4")
        assert "web-" in pods.until("ADDED")[-1]
        web_svc.wait_normal(4)
    finally:
        deploys.close()
        pods.close()
    kube.run("scale", "deployment", "web", "--replicas=3")
    web_svc.wait_normal(3)
    # A watch from a list's resourceVersion, over HTTP: changes only.
    listed = httpx.get(
        f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments",
        headers={"Authorization": f"Bearer {kube.token}"},
        verify=kube.verify,
    )
    rv = listed.json()["metadata"]["resourceVersion"]
    with httpx.stream("GET", f"{kube.endpoint}/apis/apps/v1/namespaces/default/deployments",
                      params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "20"},
                      headers={"Authorization": f"Bearer {kube.token}"}, verify=kube.verify,
                      timeout=30) as stream:  # fmt: skip
        kube.c.call(
            "ModifyServiceReplicas", {"clusterId": kube.cluster, "serviceName": "web", "scaleTo": 2}
        )
        for line in stream.iter_lines():
            event = json.loads(line)
            if event["object"]["spec"]["replicas"] == 2:
                assert event["type"] == "MODIFIED"
                assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)
                break
    kube.run("scale", "deployment", "web", "--replicas=3")
    web_svc.wait_normal(3)


def test_set_image_rollout_undo_pause_resume(kube: Kube, web_svc: Svc) -> None:
    kube.run("set", "image", "deployment/web", "httpd=openccs/busybox")
    r = kube.run("rollout", "status", "deployment/web", "--timeout=150s", timeout=170)
    assert "successfully rolled out" in r.stdout
    info = web_svc.info()
    assert info["containers"][0]["image"] == "openccs/busybox" and info["status"] == "Normal"
    live = [p for p in web_svc.pods() if p["status"] != "Terminating"]
    assert len(live) == 3 and {p["status"] for p in live} == {"Running"}
    history = kube.out("rollout", "history", "deployment/web")
    assert _revisions(history) == [1, 2]
    kube.run("rollout", "undo", "deployment/web")
    kube.run("rollout", "status", "deployment/web", "--timeout=150s", timeout=170)
    info = web_svc.info()
    assert info["containers"][0]["image"] == BUSYBOX
    # The revision returned to became the newest, as in Kubernetes.
    assert _revisions(kube.out("rollout", "history", "deployment/web")) == [2, 3]
    web_svc.wait_normal(3)
    kube.run("rollout", "pause", "deployment/web")
    assert web_svc.info()["status"] == "Paused"
    kube.run("rollout", "resume", "deployment/web")
    until("resumed", lambda: web_svc.info()["status"] == "Normal")


def _revisions(history: str) -> list[int]:
    return [int(line.split()[0]) for line in history.splitlines() if line[:1].isdigit()]


def test_label_cordon_drain_uncordon(kube: Kube, web_svc: Svc) -> None:
    def nodes() -> dict[str, dict[str, Any]]:
        res = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})
        return {n["lanIp"]: n for n in res["data"]["nodes"]}

    target = web_svc.pods()[0]["nodeIp"]
    other = next(ip for ip in nodes() if ip != target)
    kube.run("label", "node", target, "disk=ssd")
    assert nodes()[target]["labels"]["disk"] == "ssd"
    assert "disk=ssd" in kube.out("get", "node", target, "--show-labels")
    kube.run("label", "node", target, "disk-")
    assert "disk" not in nodes()[target]["labels"]
    r = kube.run("label", "node", target, "kubernetes.io/hostname=x", "--overwrite", check=False)
    assert r.returncode != 0 and "kubernetes.io/hostname" in r.stderr
    kube.run("cordon", target)
    assert nodes()[target]["unschedulable"] is True
    assert "SchedulingDisabled" in kube.out("get", "node", target)
    r = kube.run("drain", target, "--ignore-daemonsets", "--timeout=150s", timeout=170)
    assert "drained" in r.stdout
    pods = web_svc.wait_normal(3)
    assert {p["nodeIp"] for p in pods} == {other}
    kube.run("uncordon", target)
    assert nodes()[target]["unschedulable"] is False


def test_delete_pod_is_replaced(kube: Kube, web_svc: Svc) -> None:
    victim = web_svc.pods()[0]["name"]
    kube.run("delete", "pod", victim)
    names = {p["name"] for p in web_svc.wait_normal(3)}
    assert victim not in names


MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: team
  labels: {app: hello}
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: web
        image: openccs/busybox:latest
        command: ["sh", "-c", "echo hello-$HOSTNAME > /index.html; httpd -f -p 8000 -h /"]
        ports:
        - containerPort: 8000
        resources:
          requests: {cpu: 100m, memory: 16Mi}
        readinessProbe:
          tcpSocket: {port: 8000}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: hello
  namespace: team
spec:
  selector: {app: hello}
  ports:
  - port: 80
    targetPort: 8000
    protocol: TCP
"""


def test_create_namespace_apply_and_reach(kube: Kube, tmp_path: Path) -> None:
    kube.run("create", "namespace", "team")
    res = kube.c.call("DescribeClusterNameSpaces", {"clusterId": kube.cluster})
    assert "team" in {n["name"] for n in res["data"]["namespaces"]}
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    r = kube.run("apply", "-f", str(manifest))
    assert "deployment.apps/hello created" in r.stdout and "service/hello created" in r.stdout
    kube.run("rollout", "status", "-n", "team", "deployment/hello", "--timeout=120s")
    svc = Svc(kube.c, kube.cluster, "hello", "team")
    pods = svc.wait_normal(2)
    info = svc.info()
    assert info["accessType"] == "ClusterIP"
    assert info["portMappings"][0]["lbPort"] == 80
    assert info["portMappings"][0]["containerPort"] == 8000
    c0 = info["containers"][0]
    assert c0["cpu"] == 100 and c0["memory"] == 16
    assert c0["readyProbe"]["methodTcp"] == {"port": 8000}
    cluster_ip = kube.json("get", "svc", "hello", "-n", "team")["spec"]["clusterIP"]
    assert cluster_ip == info["serviceIp"]
    names = {p["name"] for p in pods}
    # Ready pods join the service rules within an engine pass of being reported ready.
    until("both pods behind the ClusterIP",
          lambda: {http_get(cluster_ip, 80) for _ in range(20)} == {f"hello-{n}" for n in names},
          30)  # fmt: skip
    nodes = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})["data"]["nodes"]
    code = (
        "import urllib.request as u; print(u.urlopen("
        f"'http://{cluster_ip}/index.html', timeout=3).read().decode().strip())"
    )
    assert in_machine(kube.srv, nodes[0]["instanceId"], code) in {f"hello-{n}" for n in names}
    # The v2 API's YAML of the service is what kubectl shows.
    text = svc.call("DescribeClusterServiceText", bSimple=1)["serviceText"]
    assert "name: hello" in text and "targetPort: 8000" in text
    # Applying again: kubectl finds its last-applied annotation kept; scaling
    # through the manifest reaches the v2 API.
    again = kube.run("apply", "-f", str(manifest))
    assert "Warning" not in again.stderr
    annotations = kube.json("get", "deploy", "hello", "-n", "team")["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    manifest.write_text(MANIFEST.replace("replicas: 2", "replicas: 3"))
    kube.run("apply", "-f", str(manifest))
    assert svc.info()["desiredReplicas"] == 3
    svc.wait_normal(3)
    # kubectl delete -f waits until both are gone; so does the v2 API's service.
    kube.run("delete", "-f", str(manifest), "--timeout=120s", timeout=150)
    res = kube.c.call("DescribeClusterService", {"clusterId": kube.cluster, "namespace": "team"})
    assert res["data"]["services"] == []
    assert kube.json("get", "pods", "-n", "team")["items"] == []


def test_outside_the_service_model_is_422(kube: Kube, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANIFEST.split("---")[0].replace("name: hello\n  namespace: team",
                   "name: bad\n  namespace: default").replace(
                   "    spec:\n", "    spec:\n      hostNetwork: true\n"))  # fmt: skip
    r = kube.run("apply", "-f", str(bad), check=False)
    assert r.returncode != 0
    assert "spec.template.spec.hostNetwork" in r.stderr and "Unsupported" in r.stderr
    bad.write_text(
        MANIFEST.split("---")[0]
        .replace("name: hello\n  namespace: team", "name: bad\n  namespace: default")
        .replace("cpu: 100m", "cpu: 10m")
    )
    r = kube.run("apply", "-f", str(bad), check=False)
    assert r.returncode != 0 and "resources.requests.cpu" in r.stderr
    svc_only = tmp_path / "svc.yaml"
    svc_only.write_text(MANIFEST.split("---")[1].replace("name: hello", "name: lonely"))
    r = kube.run("apply", "-f", str(svc_only), check=False)
    assert r.returncode != 0 and "create the Deployment first" in r.stderr
    # Nothing was made.
    res = kube.c.call("DescribeClusterService", {"clusterId": kube.cluster, "allnamespace": 1})
    assert {s["serviceName"] for s in res["data"]["services"]} & {"bad", "lonely"} == set()
    # Errors are Kubernetes Status objects.
    r = httpx.get(
        f"{kube.endpoint}/api/v1/namespaces/default/pods/none",
        headers={"Authorization": f"Bearer {kube.token}"},
        verify=kube.verify,
    )
    assert r.status_code == 404
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "NotFound"


def test_authentication_and_other_clusters(kube: Kube, tmp_path: Path) -> None:
    url = f"{kube.endpoint}/api/v1/namespaces"
    ok = httpx.get(url, headers={"Authorization": f"Bearer {kube.token}"}, verify=kube.verify)
    assert ok.status_code == 200
    basic = httpx.get(url, auth=("admin", kube.token), verify=kube.verify)
    assert basic.status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.get(url, headers=headers, verify=kube.verify)
        assert r.status_code == 401 and r.json()["kind"] == "Status"
    assert httpx.get(url, auth=("root", kube.token), verify=kube.verify).status_code == 401
    wrong = tmp_path / "wrong"
    info = security_info(kube.c, kube.cluster)
    write_kubeconfig(wrong, kube.cluster, info, "wrong-token")
    r = kube.run("get", "pods", check=False, kubeconfig=wrong)
    assert r.returncode != 0 and "Unauthorized" in r.stderr
    # Inside the VPC the API is always reachable, on the VPC gateway: from a machine.
    internal = info["clusterInternalEndpoint"]
    assert internal.startswith("https://")
    nodes = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})["data"]["nodes"]
    code = (
        "import json, ssl, urllib.request as u\n"
        f"ctx = ssl.create_default_context(cadata={info['certificationAuthority']!r})\n"
        f"req = u.Request({internal + '/api/v1/nodes'!r},"
        f" headers={{'Authorization': 'Bearer {kube.token}'}})\n"
        "print(len(json.load(u.urlopen(req, context=ctx, timeout=5))['items']))"
    )
    assert in_machine(kube.srv, nodes[0]["instanceId"], code) == "2"
    # A second cluster (no machines): its own CA and secret; neither opens the other.
    res = kube.c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    made = kube.c.call(
        "CreateEmptyCluster",
        {"clusterName": "other", "vpcId": res, "clusterCIDR": unique_cluster_cidr()},
    )
    assert made["code"] == 0, made
    other = made["data"]["clusterId"]
    assert kube.srv.wait_task(made["data"]["requestId"])["status"] == "succ"
    open_vip(kube.srv, kube.c, other)
    other_info = security_info(kube.c, other)
    assert other_info["password"] != kube.token
    assert other_info["certificationAuthority"] != info["certificationAuthority"]
    other_cfg = tmp_path / "other"
    write_kubeconfig(other_cfg, other, other_info, other_info["password"])
    assert "default" in kube.run("get", "ns", kubeconfig=other_cfg).stdout
    assert kube.run("get", "pods", "-A", kubeconfig=other_cfg).stdout.strip() == ""
    crossed = tmp_path / "crossed"
    write_kubeconfig(crossed, other, other_info, kube.token)
    r = kube.run("get", "pods", check=False, kubeconfig=crossed)
    assert r.returncode != 0 and "Unauthorized" in r.stderr
    # OperateClusterVip Delete closes the external address.
    bad = kube.c.call("OperateClusterVip", {"clusterId": other, "operation": "Open"})
    assert bad["code"] == 4000 and "operation" in bad["message"]
    again = kube.c.call("OperateClusterVip", {"clusterId": other, "operation": "Create"})
    assert again["code"] != 0
    open_vip(kube.srv, kube.c, other, "Delete")
    assert external_endpoint(kube.c, other) is None
    assert security_info(kube.c, other)["clusterExternalEndpoint"] == ""
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{other_info['clusterExternalEndpoint']}/version", verify=False, timeout=3)
    # The first cluster's address is still open.
    assert httpx.get(f"{kube.endpoint}/version", verify=kube.verify).status_code == 401


def test_official_client_reads_the_credentials(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    from QcloudApi.modules.ccs import Ccs
    from QcloudApi.qcloudapi import QcloudApi

    monkeypatch.setattr(Ccs, "requestHost", f"127.0.0.1:{kube.srv.https_port}")
    monkeypatch.setenv("SSL_CERT_FILE", str(kube.srv.ca))
    acct = kube.srv.default
    api = QcloudApi("ccs", {"Region": "gz", "secretId": acct.secret_id,
                            "secretKey": acct.secret_key, "method": "POST"})  # fmt: skip
    res = json.loads(api.call("DescribeClusterSecurityInfo", {"clusterId": kube.cluster}))
    assert res["code"] == 0, res
    assert res["data"]["userName"] == "admin" and res["data"]["password"] == kube.token
    assert res["data"]["clusterExternalEndpoint"] == kube.endpoint
    res = json.loads(api.call("OperateClusterVip", {"clusterId": kube.cluster,
                                                    "operation": "Create"}))  # fmt: skip
    assert res["code"] == 5100 and "already open" in res["message"]


def test_endpoint_survives_kill_9(kube: Kube, web_svc: Svc) -> None:
    """Same address, CA and secret after a kill -9 and a restart: the kubeconfig still works."""
    kube.srv.kill9()
    kube.srv.start()
    assert security_info(kube.c, kube.cluster)["clusterExternalEndpoint"] == kube.endpoint
    out = until("the API back", lambda: kube.run("get", "deploy", "web", check=False).stdout)
    assert "web" in out
