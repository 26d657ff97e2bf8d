"""Shared by the workload tests: a server with a cluster of real machines, and small helpers
to create services and watch their pods."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from openccs.client import Client

from .conftest import Server, served, unique_cluster_cidr

RUN = Path("/run/openccs")
BUSYBOX = "openccs/busybox:latest"


@contextlib.contextmanager
def cluster_env(srv: Server, machines: int) -> Iterator[tuple[Server, Client, str]]:
    """`srv` started with a cluster of `machines` machines: what the module-scoped `env`
    fixtures of the workload tests yield."""
    with served(srv):
        cluster = make_cluster(srv, machines=machines)
        yield srv, srv.client(), cluster


PASSES = re.compile(r'^openccs_agent_passes_total\{machine="([^"]+)",outcome="([^"]+)"\} (\S+)$')


@contextlib.contextmanager
def metrics_token(srv: Server, note: str) -> Iterator[str]:
    """A bearer token for `/metrics`, revoked at the end."""
    made = json.loads(srv.cli("metrics-token", "create", "--note", note).stdout)
    try:
        yield str(made["token"])
    finally:
        srv.cli("metrics-token", "revoke", made["id"])


def agent_passes(srv: Server, token: str) -> dict[tuple[str, str], float]:
    """(machine, outcome) -> node agent passes, as /metrics says."""
    r = httpx.get(f"{srv.http_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text[:300]
    found = {}
    for line in r.text.splitlines():
        m = PASSES.match(line)
        if m:
            found[(m[1], m[2])] = float(m[3])
    return found


def call(c: Client, action: str, **params: Any) -> dict[str, Any]:
    """The data of a call that must succeed."""
    res = c.call(action, params)
    assert res["code"] == 0, (action, res)
    return dict(res.get("data") or {})


def fault(c: Client, fault_id: str) -> dict[str, Any]:
    (row,) = call(c, "OpenccsDescribeFaults", faultId=fault_id)["faults"]
    return dict(row)


def make_cluster(server: Server, machines: int = 2, root_size: int = 50) -> str:
    c = server.client()
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    subnet = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
    res = c.call(
        "CreateCluster",
        {
            "clusterName": "work",
            "clusterCIDR": unique_cluster_cidr(),
            "vpcId": vpc,
            "osName": "ubuntu16.04.1 LTSx86_64",
            "zoneId": "ap-guangzhou-3",
            "goodsNum": machines,
            "cpu": 2,
            "mem": 2,
            "bandwidthType": "PayByHour",
            "bandwidth": 0,
            "subnetId": subnet["unSubnetId"],
            "isVpcGateway": 0,
            "rootSize": root_size,
            "storageSize": 0,
        },
    )
    assert res["code"] == 0, res
    assert server.wait_task(res["data"]["requestId"])["status"] == "succ"
    return str(res["data"]["clusterId"])


def web(name: str, replicas: int = 3, text: str = "$HOSTNAME", **extra: Any) -> dict[str, Any]:
    """A busybox httpd service answering `text` on port 80 (ClusterIP port 8080)."""
    return {
        "serviceName": name,
        "replicas": replicas,
        "accessType": "ClusterIP",
        "portMappings": [{"lbPort": 8080, "containerPort": 80, "protocol": "TCP"}],
        "containers": [
            {
                "containerName": "httpd",
                "image": BUSYBOX,
                "command": "sh",
                "arguments": ["-c", f'echo "{text}" > /index.html; httpd -f -p 80 -h /'],
            }
        ],
        **extra,
    }


def ready_while_file(
    spec: dict[str, Any], check: dict[str, Any], interval: int = 2
) -> dict[str, Any]:
    """`spec` (of `web`) with pods answering their name and ready while their /ready exists:
    `check` is the readyCheck's method and its fields; one probe decides, every `interval` s."""
    spec["containers"][0]["arguments"] = [
        "-c", 'echo "$HOSTNAME" > /index.html; touch /ready; httpd -f -p 80 -h /'
    ]  # fmt: skip
    spec["containers"][0]["healthCheck"] = [
        {"type": "readyCheck", **check, "healthNum": 1, "unhealthNum": 1,
         "intervalTime": interval, "timeOut": 2},
    ]  # fmt: skip
    return spec


def until(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


class Svc:
    """One service of a cluster, seen through the API."""

    def __init__(self, c: Client, cluster: str, name: str, namespace: str = "default") -> None:
        self.c, self.cluster, self.name, self.namespace = c, cluster, name, namespace

    def ref(self, **more: Any) -> dict[str, Any]:
        return {"clusterId": self.cluster, "serviceName": self.name, "namespace": self.namespace,
                **more}  # fmt: skip

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        res = self.c.call(action, self.ref(**params))
        assert res["code"] == 0, (action, res)
        return dict(res.get("data") or {})

    def info(self) -> dict[str, Any]:
        return dict(self.call("DescribeClusterServiceInfo")["service"])

    def pods(self) -> list[dict[str, Any]]:
        return list(self.call("DescribeServiceInstance", limit=100)["instances"])

    def running(self) -> list[dict[str, Any]]:
        return [p for p in self.pods() if p["status"] == "Running"]

    def events(self) -> list[dict[str, Any]]:
        return list(self.call("DescribeServiceEvent")["eventList"])

    def wait_normal(self, replicas: int, timeout: float = 90) -> list[dict[str, Any]]:
        def ok() -> Any:
            info = self.info()
            pods = self.running()
            return pods if info["status"] == "Normal" and len(pods) == replicas else None

        return list(until(f"{self.name} Normal with {replicas} pods", ok, timeout))


def create(c: Client, cluster: str, spec: dict[str, Any], namespace: str = "default") -> Svc:
    res = c.call("CreateClusterService", {"clusterId": cluster, "namespace": namespace, **spec})
    assert res["code"] == 0, res
    return Svc(c, cluster, spec["serviceName"], namespace)


def http_get(ip: str, port: int = 80, path: str = "/index.html") -> str:
    return httpx.get(f"http://{ip}:{port}{path}", timeout=3).text.strip()


def machine_netns(server: Server, instance_id: str) -> str:
    site = (server.data_dir / "site-id").read_text().strip()
    return f"occ-{site}-{instance_id.split('-', 1)[1]}"


def in_machine(server: Server, instance_id: str, code: str) -> str:
    """Run Python in a machine's network namespace (as a process on that machine)."""
    r = subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{machine_netns(server, instance_id)}", "python3", "-c",
         code], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def socket_of(server: Server, instance_id: str) -> Path:
    site = (server.data_dir / "site-id").read_text().strip()
    return RUN / site / instance_id / "docker.sock"


def exec_in_pod(
    server: Server, instance_id: str, pod: str, *cmd: str, container: str | None = None
) -> str:
    sock = socket_of(server, instance_id)
    which = f"label=openccs.container={container}" if container else "label=openccs.role=app"
    ids = subprocess.run(
        ["docker", "-H", f"unix://{sock}", "ps", "-q", "--filter", f"label=openccs.pod={pod}",
         "--filter", which], capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert ids, f"no running container of {pod} on {instance_id}"
    r = subprocess.run(["docker", "-H", f"unix://{sock}", "exec", ids[0], *cmd],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    return r.stdout.strip()


def node_of(c: Client, cluster: str, lan_ip: str) -> str:
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    return str(next(n["instanceId"] for n in nodes if n["lanIp"] == lan_ip))
