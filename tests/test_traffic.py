"""Traffic from outside a cluster, for real: public and inner load balancers and node ports
forward TCP and UDP to ready pods only; ModifyClusterService changes them without dropping
the other ports; bad input changes nothing."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs.client import Client
from openccs.registry.images import File, busybox_image

from .conftest import Server, unique_vpc_cidr
from .test_registry_lib import PASSWORD, call_ok, push_ok, registry_of
from .workload_helpers import (
    Svc,
    cluster_env,
    create,
    exec_in_pod,
    in_machine,
    node_of,
    ready_while_file,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("traffic")

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("traffic")
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--node-port-range", "30000-30100"),
    )
    with cluster_env(srv, machines=2) as env:
        yield env


def lb_web(name: str, access: str = "LoadBalancer", replicas: int = 3, **extra: Any) -> dict:
    spec = web(name, replicas=replicas, **extra)
    spec["accessType"] = access
    spec["portMappings"] = [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}]
    return spec


def get(ip: str, port: int = 80, path: str = "/index.html", timeout: float = 3) -> str:
    return httpx.get(f"http://{ip}:{port}{path}", timeout=timeout).text.strip()


def names_via(ip: str, port: int = 80, n: int = 30) -> set[str]:
    """Who answers `n` requests (refusals while endpoints settle count as no answer)."""
    seen = set()
    for _ in range(n):
        with contextlib.suppress(httpx.HTTPError):
            seen.add(get(ip, port, timeout=2))
    return seen


def running_lb(svc: Svc) -> dict[str, Any]:
    def ready() -> Any:
        info = svc.info()
        return info if info["lbStatus"] == "Running" and info["externalIp"] else None

    return dict(until(f"{svc.name}'s load balancer Running", ready, 60))


def default_vpc(c: Client) -> str:
    """The default VPC, the cluster's (the tests may add other VPCs)."""
    return str(next(v["unVpcId"] for v in c.call("DescribeVpcEx")["data"] if v["isDefault"]))


def host_addresses() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def test_load_balancer_reaches_every_ready_pod_and_follows_scaling(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, lb_web("front"))
    pods = svc.wait_normal(3)
    info = running_lb(svc)
    vip = info["externalIp"]
    assert info["lbId"].startswith("lb-") and info["accessType"] == "LoadBalancer"
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(srv.lb_pool)
    # The listing shows the same balancer.
    listed = c.call("DescribeClusterService", {"clusterId": cluster})["data"]["services"]
    row = next(s for s in listed if s["serviceName"] == "front")
    assert (row["externalIp"], row["lbId"], row["lbStatus"]) == (vip, info["lbId"], "Running")
    # A node port was allocated for the mapping, from the configured range.
    (pm,) = info["portMappings"]
    assert 30000 <= pm["nodePort"] <= 30100

    until("every pod behind the VIP", lambda: names_via(vip) == {p["name"] for p in pods}, 30)
    hits = Counter(get(vip) for _ in range(300))
    assert set(hits) == {p["name"] for p in pods}, hits
    assert min(hits.values()) > 30, hits  # random with equal weight: each near 100

    svc.call("ModifyServiceReplicas", scaleTo=1)
    until("one pod left", lambda: len(svc.pods()) == 1, 60)
    (only,) = svc.wait_normal(1)
    until("only the remaining pod answers",
          lambda: names_via(vip, n=20) == {only["name"]}, 30)  # fmt: skip
    svc.call("ModifyServiceReplicas", scaleTo=3)
    again = svc.wait_normal(3)
    until("all three answer again",
          lambda: names_via(vip, n=60) == {p["name"] for p in again}, 30)  # fmt: skip

    # The node port answers on every machine of the cluster.
    for lan_ip in {p["nodeIp"] for p in again}:
        assert get(lan_ip, pm["nodePort"]) in {p["name"] for p in again}
    svc.call("DeleteClusterService")
    until("the VIP leaves the host", lambda: vip not in host_addresses(), 60)
    # (Whatever else may answer for an unknown address here, no pod of ours does.)
    assert not answered_by(vip, 80, {p["name"] for p in again})


def test_unready_pod_leaves_the_balancer_without_restart(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    spec = ready_while_file(
        lb_web("gated", replicas=2), {"checkMethod": "methodCmd", "cmd": "test -f /ready"}
    )
    svc = create(c, cluster, spec)
    a, b = svc.wait_normal(2)
    vip = running_lb(svc)["externalIp"]
    until("both behind the VIP", lambda: names_via(vip) == {a["name"], b["name"]})
    exec_in_pod(srv, node_of(c, cluster, a["nodeIp"]), a["name"], "rm", "/ready")
    # Within the probe period (2 s) and an engine pass, a stops receiving traffic.
    until("a out of rotation", lambda: names_via(vip, n=20) == {b["name"]}, 15)
    assert next(p for p in svc.pods() if p["name"] == a["name"])["restartCount"] == 0
    exec_in_pod(srv, node_of(c, cluster, a["nodeIp"]), a["name"], "touch", "/ready")
    until("a back", lambda: names_via(vip) == {a["name"], b["name"]}, 15)
    svc.call("DeleteClusterService")


def test_node_port_service_on_every_machine(env: tuple[Server, Client, str]) -> None:
    _srv, c, cluster = env
    spec = lb_web("np", access="NodePort", replicas=2)
    spec["portMappings"] = [
        {"lbPort": 80, "containerPort": 80, "protocol": "TCP", "nodePort": 30080},
        {"lbPort": 81, "containerPort": 80, "protocol": "TCP"},
    ]
    svc = create(c, cluster, spec)
    pods = svc.wait_normal(2)
    info = svc.info()
    assert info["lbStatus"] == "None" and info["externalIp"] == "" and info["lbId"] == ""
    ports = {pm["lbPort"]: pm["nodePort"] for pm in info["portMappings"]}
    assert ports[80] == 30080 and 30000 <= ports[81] <= 30100 and ports[81] != 30080
    names = {p["name"] for p in pods}
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    for node in nodes:
        ip = node["lanIp"]
        until(f"node port on {ip}", lambda ip=ip: names_via(ip, 30080) == names)
        assert get(node["lanIp"], ports[81]) in names
    # Still a ClusterIP inside the cluster, as a Kubernetes NodePort service is.
    assert get(info["serviceIp"], 80) in names
    # The node port is not opened on the host itself.
    assert not answered_by("127.0.0.1", 30080, names)
    # Taken: another service asking for 30080 gets a 4000 and nothing is created.
    other = lb_web("np2", access="NodePort", replicas=1)
    other["portMappings"][0]["nodePort"] = 30080
    res = c.call("CreateClusterService", {"clusterId": cluster, **other})
    assert res["code"] == 4000 and "portMappings.0.nodePort" in res["message"], res
    assert "already used" in res["message"]
    listed = c.call("DescribeClusterService", {"clusterId": cluster})["data"]["services"]
    assert "np2" not in {s["serviceName"] for s in listed}
    svc.call("DeleteClusterService")


def test_inner_load_balancer_from_a_machine_of_the_vpc(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    vpc = default_vpc(c)
    subnet = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
    spec = lb_web("inner", access="SvcLBTypeInner", replicas=2, subnetId=subnet["unSubnetId"])
    svc = create(c, cluster, spec)
    pods = svc.wait_normal(2)
    info = running_lb(svc)
    vip = info["externalIp"]
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(subnet["cidrBlock"])
    assert info["subnetId"] == subnet["unSubnetId"]
    names = {p["name"] for p in pods}
    # From the host, and from a machine of the VPC (through the VPC, not a pod network).
    until("inner VIP from the host", lambda: names_via(vip) == names)
    iid = node_of(c, cluster, pods[0]["nodeIp"])
    code = (f"import urllib.request as u; print(u.urlopen('http://{vip}/index.html',"
            " timeout=3).read().decode().strip())")  # fmt: skip
    assert in_machine(srv, iid, code) in names
    # The VIP is not given to a machine added later.
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    assert vip not in {n["lanIp"] for n in nodes}
    svc.call("DeleteClusterService")


def test_modify_ports_keeps_the_balancer_and_the_other_ports(
    env: tuple[Server, Client, str],
) -> None:
    _srv, c, cluster = env
    spec = lb_web("mod", replicas=2)
    svc = create(c, cluster, spec)
    svc.wait_normal(2)
    first = running_lb(svc)
    vip = first["externalIp"]
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                get(vip)
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            time.sleep(0.02)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        spec["portMappings"].append({"lbPort": 8081, "containerPort": 80, "protocol": "TCP"})
        res = c.call("ModifyClusterService", {"clusterId": cluster, **spec})
        assert res["code"] == 0, res
        until("port 8081 through the VIP", lambda: _answers(vip, 8081), 30)
        time.sleep(1)
    finally:
        stop.set()
        worker.join()
    assert failures == []
    info = svc.info()
    assert (info["externalIp"], info["lbId"]) == (vip, first["lbId"])
    # The node port of the unchanged mapping is kept.
    kept = {pm["lbPort"]: pm["nodePort"] for pm in info["portMappings"]}
    assert kept[80] == first["portMappings"][0]["nodePort"]
    # To ClusterIP: the balancer goes away.
    spec["accessType"] = "ClusterIP"
    res = c.call("ModifyClusterService", {"clusterId": cluster, **spec})
    assert res["code"] == 0, res
    until("no balancer", lambda: svc.info()["lbStatus"] == "None")
    assert svc.info()["externalIp"] == ""
    until("VIP released", lambda: vip not in host_addresses(), 30)
    svc.call("DeleteClusterService")


def answered_by(ip: str, port: int, names: set[str]) -> bool:
    try:
        return get(ip, port, timeout=2) in names
    except httpx.HTTPError:
        return False


def _answers(ip: str, port: int) -> bool:
    try:
        get(ip, port, timeout=2)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def udp_image(env: tuple[Server, Client, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox plus a static UDP echo server, pushed to openccs's registry."""
    srv, _c, _cluster = env
    work = tmp_path_factory.mktemp("udp")
    binary = work / "udp-echo"
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(binary), str(HERE / "images" / "udp_echo.c")],
        check=True,
    )
    built = busybox_image(
        work / "layout", "v1", extra=[File("bin/udp-echo", binary.read_bytes(), 0o755)]
    )
    reg = registry_of(srv)
    call_ok(srv, None, "RegisterRepositoryAccountNew", password=PASSWORD)
    call_ok(srv, None, "CreateCCRNamespace", namespace="net")
    push_ok(reg, built, "net/udp-echo:v1", f"{srv.default.uin}:{PASSWORD}", srv.default)
    return f"{reg.host}/net/udp-echo:v1"


def udp_ask(ip: str, port: int, text: str = "ping", timeout: float = 2) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(text.encode(), (ip, port))
        return s.recv(2048).decode()


def test_udp_through_load_balancer_and_node_port(
    env: tuple[Server, Client, str], udp_image: str
) -> None:
    _srv, c, cluster = env
    spec = {
        "serviceName": "echo",
        "replicas": 2,
        "accessType": "LoadBalancer",
        "portMappings": [{"lbPort": 53, "containerPort": 9000, "protocol": "UDP"}],
        "containers": [{"containerName": "echo", "image": udp_image, "command": "udp-echo",
                        "arguments": ["9000"]}],
    }  # fmt: skip
    svc = create(c, cluster, spec)
    pods = svc.wait_normal(2)
    info = running_lb(svc)
    names = {p["name"] for p in pods}

    def answered(ip: str, port: int) -> set[str]:
        seen = set()
        for i in range(40):
            # A new source port each time: a new conntrack entry, a new random pick.
            with contextlib.suppress(TimeoutError):
                seen.add(udp_ask(ip, port, f"n{i}").split()[0])
        return seen

    until("UDP through the VIP reaches both pods",
          lambda: answered(info["externalIp"], 53) == names, 30)  # fmt: skip
    assert udp_ask(info["externalIp"], 53, "hello").split()[1] == "hello"
    node_port = info["portMappings"][0]["nodePort"]
    for lan_ip in sorted({p["nodeIp"] for p in pods}):
        # Each machine's own rules follow the pods on its cluster's pass, the VIP's on the
        # host's: the node port may see the second pod a moment after the VIP does.
        until(f"UDP through {lan_ip}'s node port reaches both pods",
              lambda ip=lan_ip: answered(ip, node_port) == names, 30)  # fmt: skip
    # One client socket (one source port) is pinned to one pod by conntrack; when that pod
    # goes, its entry goes with it and the same socket reaches a pod that is there.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"first", (info["externalIp"], 53))
        pinned = s.recv(2048).decode().split()[0]
        res = c.call("DeleteInstances", {"clusterId": cluster, "instances": [pinned]})
        assert res["code"] == 0, res
        until("the deleted pod is gone", lambda: pinned not in {p["name"] for p in svc.pods()})
        svc.wait_normal(2)

        def other() -> str:
            s.sendto(b"again", (info["externalIp"], 53))
            try:
                return s.recv(2048).decode().split()[0]
            except TimeoutError:
                return ""

        assert until("the same socket answered by a live pod", other, 30) != pinned
    svc.call("DeleteClusterService")


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"accessType": "SvcLBTypeInner"}, "subnetId", "required"),
    ({"accessType": "SvcLBTypeInner", "subnetId": "subnet-nothere"}, "subnetId", "does not"),
    ({"accessType": "NodePort", "portMappings": [
        {"lbPort": 80, "containerPort": 80, "protocol": "TCP", "nodePort": 29999}]},
     "portMappings.0.nodePort", "outside"),
    ({"accessType": "NodePort", "portMappings": [
        {"lbPort": 80, "containerPort": 80, "protocol": "TCP", "nodePort": 30101}]},
     "portMappings.0.nodePort", "outside"),
    ({"accessType": "LoadBalancer", "portMappings": [
        {"lbPort": 80, "containerPort": 80, "protocol": "TCP", "nodePort": 30050},
        {"lbPort": 81, "containerPort": 80, "protocol": "TCP", "nodePort": 30050}]},
     "portMappings.1.nodePort", "twice"),
    ({"accessType": "ClusterIP", "portMappings": [
        {"lbPort": 80, "containerPort": 80, "protocol": "TCP", "nodePort": 30050}]},
     "portMappings.0.nodePort", "NodePort"),
    ({"accessType": "LoadBalancer", "portMappings": []}, "portMappings", "at least one"),
    ({"accessType": "Balanced"}, "accessType", ""),
    ({"accessType": "LoadBalancer", "portMappings": [
        {"lbPort": 70000, "containerPort": 80, "protocol": "TCP"}]}, "portMappings.0.lbPort", ""),
]  # fmt: skip


@pytest.mark.parametrize(("change", "param", "words"), BAD)
def test_bad_access_input_creates_nothing(
    env: tuple[Server, Client, str], change: dict[str, Any], param: str, words: str
) -> None:
    _srv, c, cluster = env
    spec = {**lb_web("bad", replicas=1), **change}
    res = c.call("CreateClusterService", {"clusterId": cluster, **spec})
    assert res["code"] in (4000, 5000), res
    assert param in res["message"] and words in res["message"], res
    listed = c.call("DescribeClusterService", {"clusterId": cluster})["data"]["services"]
    assert "bad" not in {s["serviceName"] for s in listed}


def test_inner_balancer_needs_a_subnet_of_the_clusters_vpc(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    # A second VPC of the account, with a subnet: not the cluster's.
    cidr = ipaddress.ip_network(unique_vpc_cidr())
    first = next(cidr.subnets(new_prefix=24))
    made = json.loads(
        srv.cli("vpc", "create", srv.default.uin, "--cidr", str(cidr), "--subnet",
                f"ap-guangzhou-3={first}").stdout
    )  # fmt: skip
    sub = made["subnets"][0]
    spec = lb_web("x", access="SvcLBTypeInner", replicas=1, subnetId=sub)
    res = c.call("CreateClusterService", {"clusterId": cluster, **spec})
    assert res["code"] == 4000 and "subnetId" in res["message"], res
    assert "not in the cluster's VPC" in res["message"]


# Ingress.


def colour(name: str) -> dict[str, Any]:
    """A one-pod service answering its own name on every path (its 404 page is its name)."""
    spec = web(name, replicas=1)
    spec["containers"][0]["arguments"] = [
        "-c",
        f"mkdir -p /www && echo {name} > /www/index.html && echo E404:/www/index.html"
        " > /etc/httpd.conf && httpd -f -p 80 -h /www -c /etc/httpd.conf",
    ]
    return spec


@pytest.fixture(scope="module")
def colours(env: tuple[Server, Client, str]) -> Iterator[list[Svc]]:
    _srv, c, cluster = env
    made = [create(c, cluster, colour(n)) for n in ("blue", "green", "red")]
    for svc in made:
        svc.wait_normal(1)
    yield made
    for svc in made:
        svc.call("DeleteClusterService")


def rule(domain: str, url: str, service: str, port: int = 80, protocol: str = "http") -> dict:
    return {"domain": domain, "url": url, "protocol": protocol, "serviceName": service,
            "servicePort": 8080, "LoadBalancePort": port}  # fmt: skip


def ingress(c: Client, cluster: str, name: str) -> dict[str, Any]:
    res = c.call("DescribeIngress", {"clusterId": cluster})
    assert res["code"] == 0, res
    return dict(next(i for i in res["data"]["ingressList"] if i["ingressName"] == name))


def running_ingress(c: Client, cluster: str, name: str) -> dict[str, Any]:
    return dict(until(f"ingress {name} Running",
                      lambda: (i := ingress(c, cluster, name))["lbStatus"] == "Running" and i,
                      60))  # fmt: skip


def via(ip: str, host: str, path: str = "/", port: int = 80) -> str:
    try:
        return httpx.get(
            f"http://{ip}:{port}{path}", headers={"Host": host}, timeout=3
        ).text.strip()
    except httpx.HTTPError as exc:
        return f"error {exc!r}"


SHOP = [
    rule("shop.example.com", "/", "blue"),
    rule("shop.example.com", "= /exact", "green"),
    rule("shop.example.com", "^~ /static/", "red"),
    rule("shop.example.com", "~ \\.png$", "green"),
    rule("shop.example.com", "~* \\.jpg$", "red"),
    rule("*.wild.example.com", "/", "green"),
    rule("api.*", "/", "red"),
    rule("~^v[0-9]+\\.example\\.org$", "/", "green"),
]

ROUTES = [  # (host, path, who answers)
    ("shop.example.com", "/", "blue"),
    ("shop.example.com", "/anything/else", "blue"),
    ("shop.example.com", "/exact", "green"),
    ("shop.example.com", "/exact/more", "blue"),
    ("shop.example.com", "/static/a.png", "red"),  # ^~ wins over the regular expressions
    ("shop.example.com", "/img/a.png", "green"),
    ("shop.example.com", "/img/a.PNG", "blue"),  # ~ is case-sensitive
    ("shop.example.com", "/img/a.JPG", "red"),  # ~* is not
    ("x.wild.example.com", "/", "green"),
    ("api.example.net", "/", "red"),
    ("v2.example.org", "/", "green"),
    ("vx.example.org", "/", "<404>"),
    ("unknown.example.com", "/", "<404>"),
]


def test_ingress_routes_by_domain_and_each_path_modifier(
    env: tuple[Server, Client, str], colours: list[Svc]
) -> None:
    srv, c, cluster = env
    res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "shop",
                                   "ingressDesc": "the shop", "rules": SHOP})  # fmt: skip
    assert res["code"] == 0, res
    ing = running_ingress(c, cluster, "shop")
    ip = ing["ingressIp"]
    assert ing["lbId"].startswith("lb-") and ing["ingressDesc"] == "the shop"
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(srv.lb_pool)
    assert [r["url"] for r in ing["rules"]] == [r["url"] for r in SHOP]

    def answers() -> list[tuple[str, str, str]]:
        got = []
        for host, path, _ in ROUTES:
            r = httpx.get(f"http://{ip}{path}", headers={"Host": host}, timeout=3)
            got.append((host, path, r.text.strip() if r.status_code != 404 or
                        r.text.strip() in ("blue", "green", "red") else "<404>"))  # fmt: skip
        return got

    until("every route answered as its rule says", lambda: answers() == ROUTES, 30)
    # allnamespace lists it too; another namespace does not.
    assert c.call("DescribeIngress", {"clusterId": cluster, "allnamespace": 1})["data"][
        "ingressList"
    ]
    res = c.call("CreateClusterNamespace", {"clusterId": cluster, "name": "empty",
                                            "description": ""})  # fmt: skip
    assert res["code"] == 0, res
    other = c.call("DescribeIngress", {"clusterId": cluster, "namespace": "empty"})
    assert other["data"]["ingressList"] == []
    other = c.call("DescribeIngress", {"clusterId": cluster, "namespace": "nosuch"})
    assert other["code"] == 5000 and "namespace" in other["message"], other

    res = c.call("DeleteIngress", {"clusterId": cluster, "ingressName": "shop"})
    assert res["code"] == 0, res
    until("the ingress VIP leaves the host", lambda: ip not in host_addresses(), 30)
    assert ingress_nginx_pids(srv) == []


def ingress_nginx_pids(srv: Server) -> list[int]:
    site = (srv.data_dir / "site-id").read_text().strip()
    out = subprocess.run(["pgrep", "-f", f"/run/openccs/{site}/ingress-"], capture_output=True,
                         text=True).stdout  # fmt: skip
    return [int(p) for p in out.split()]


def make_cert(workdir: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` signed by it: (ca, chain, key) files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ingress CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    paths = (workdir / "ca.pem", workdir / "chain.pem", workdir / "key.pem")
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_https_ingress_with_uploaded_certificate_and_reload_without_loss(
    env: tuple[Server, Client, str], colours: list[Svc], tmp_path: Path
) -> None:
    srv, c, cluster = env
    ca, chain, key = make_cert(tmp_path, "secure.example.com")
    out = srv.cli("cert", "upload", srv.default.uin, "--cert", str(chain), "--key", str(key))
    cert_id = json.loads(out.stdout)["certId"]
    assert cert_id.startswith("cert-")
    # A key that is not the certificate's is refused by the CLI.
    _, _, other_key = make_cert(tmp_path / "..", "other.example.com")
    bad = srv.cli("cert", "upload", srv.default.uin, "--cert", str(chain), "--key",
                  str(other_key), check=False)  # fmt: skip
    assert bad.returncode != 0 and "does not belong" in bad.stderr

    rules = [rule("plain.example.com", "/", "blue")]
    res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "sec", "rules": rules})
    assert res["code"] == 0, res
    ip = running_ingress(c, cluster, "sec")["ingressIp"]
    until("plain route", lambda: via(ip, "plain.example.com") == "blue", 30)

    # http and https on one port of one ingress collide.
    res = c.call("ModifyIngress", {
        "clusterId": cluster, "ingressName": "sec", "certId": cert_id,
        "rules": [*rules, rule("secure.example.com", "/", "green", 80, "https")]})  # fmt: skip
    assert res["code"] == 4000 and "rules.1.LoadBalancePort" in res["message"], res
    assert "already serves http" in res["message"]
    assert ingress(c, cluster, "sec")["certId"] == ""

    failures: list[str] = []
    count = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            got = via(ip, "plain.example.com")
            count[0] += 1
            if got != "blue":
                failures.append(got)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        # Several graceful reloads while requests flow: HTTPS added, paths added and removed.
        res = c.call("ModifyIngress", {
            "clusterId": cluster, "ingressName": "sec", "certId": cert_id,
            "rules": [*rules, rule("secure.example.com", "/", "green", 443, "https")]})  # fmt: skip
        assert res["code"] == 0, res

        def secure() -> str:
            r = subprocess.run(
                ["curl", "-sS", "--max-time", "3", "--cacert", str(ca), "--resolve",
                 f"secure.example.com:443:{ip}", "https://secure.example.com/"],
                capture_output=True, text=True,
            )  # fmt: skip
            return r.stdout.strip() or r.stderr.strip()

        until("HTTPS verified by the client", lambda: secure() == "green", 30)
        for i in range(4):
            extra = [rule("plain.example.com", f"/v{i}", "red")] if i % 2 == 0 else []
            res = c.call("ModifyIngress", {
                "clusterId": cluster, "ingressName": "sec", "ingressDesc": f"round {i}",
                "rules": [*rules, rule("secure.example.com", "/", "green", 443, "https"),
                          *extra]})  # fmt: skip
            assert res["code"] == 0, res
            seen = count[0]
            # Requests keep being answered across each reload (how many depends on the
            # host's load, so only that some were: no timing figure here).
            until(f"requests served after reload {i}", lambda n=seen: count[0] > n, 30)
            time.sleep(1.5)
        until("last round applied", lambda: via(ip, "plain.example.com", "/v2") == "blue", 30)
    finally:
        stop.set()
        worker.join()
    assert count[0] > 4 and failures == [], (count, failures[:5])
    assert ingress(c, cluster, "sec")["ingressDesc"] == "round 3"
    assert ingress(c, cluster, "sec")["certId"] == cert_id
    c.call("DeleteIngress", {"clusterId": cluster, "ingressName": "sec"})


def test_inner_ingress_from_a_subnet(env: tuple[Server, Client, str], colours: list[Svc]) -> None:
    srv, c, cluster = env
    vpc = default_vpc(c)
    subnet = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
    res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "inside",
                                   "unSubnetId": subnet["unSubnetId"],
                                   "rules": [rule("in.example.com", "/", "red")]})  # fmt: skip
    assert res["code"] == 0, res
    ing = running_ingress(c, cluster, "inside")
    assert ing["unSubnetId"] == subnet["unSubnetId"]
    assert ipaddress.ip_address(ing["ingressIp"]) in ipaddress.ip_network(subnet["cidrBlock"])
    until("inner ingress answers", lambda: via(ing["ingressIp"], "in.example.com") == "red", 30)
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    code = (f"import urllib.request as u; r=u.Request('http://{ing['ingressIp']}/',"
            " headers={'Host': 'in.example.com'}); print(u.urlopen(r, timeout=3).read()"
            ".decode().strip())")  # fmt: skip
    assert in_machine(srv, nodes[0]["instanceId"], code) == "red"
    c.call("DeleteIngress", {"clusterId": cluster, "ingressName": "inside"})


BAD_RULES: list[tuple[dict[str, Any], str, str]] = [
    ({"url": "/" + "a" * 80}, "rules.0.url", ""),
    ({"url": "/a b"}, "rules.0.url", "letters, digits"),
    ({"url": "no-slash"}, "rules.0.url", "starting with '/'"),
    ({"url": "~ a{1"}, "rules.0.url", "without blanks"),
    ({"url": "~ (unclosed"}, "rules.0.url", "not a regular expression"),
    ({"domain": "a" * 81}, "rules.0.domain", ""),
    ({"domain": "sh*p.example.com"}, "rules.0.domain", "'*' only"),
    ({"domain": "shop_example.com"}, "rules.0.domain", "letters"),
    ({"domain": "~a b"}, "rules.0.domain", "without blanks"),
    ({"protocol": "ftp"}, "rules.0.protocol", ""),
    ({"protocol": "https"}, "rules.0.protocol", "certId"),
    ({"serviceName": "nosuch"}, "rules.0.serviceName", "no service nosuch"),
    ({"servicePort": 9999}, "rules.0.servicePort", "no TCP port 9999"),
    ({"LoadBalancePort": 0}, "rules.0.LoadBalancePort", ""),
    ({"LoadBalancePort": 65536}, "rules.0.LoadBalancePort", ""),
]


@pytest.mark.parametrize(("change", "param", "words"), BAD_RULES)
def test_bad_ingress_rules_create_nothing(
    env: tuple[Server, Client, str], colours: list[Svc], change: dict[str, Any], param: str,
    words: str,
) -> None:  # fmt: skip
    _srv, c, cluster = env
    bad = {**rule("ok.example.com", "/", "blue"), **change}
    res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "bad", "rules": [bad]})
    assert res["code"] == 4000 and param in res["message"] and words in res["message"], res
    names = [i["ingressName"] for i in
             c.call("DescribeIngress", {"clusterId": cluster})["data"]["ingressList"]]  # fmt: skip
    assert "bad" not in names


def test_bad_ingress_requests(env: tuple[Server, Client, str], colours: list[Svc]) -> None:
    _srv, c, cluster = env
    ok = rule("ok.example.com", "/", "blue")

    def create_bad(**params: Any) -> dict[str, Any]:
        res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "bad", **params})
        assert res["code"] in (4000, 5000), res
        return res

    assert "certId" in create_bad(rules=[ok], certId="cert-nothere")["message"]
    res = create_bad(rules=[ok, {**rule("ok.example.com", "/x", "blue"), "protocol": "https"}],
                     certId="")  # fmt: skip
    assert "rules.1.protocol" in res["message"]
    res = create_bad(rules=[ok, ok])
    assert "rules.1" in res["message"] and "same port, domain and url" in res["message"]
    assert "unSubnetId" in create_bad(rules=[ok], unSubnetId="subnet-nothere")["message"]
    assert "ingressName" in create_bad(ingressName="Bad_Name", rules=[ok])["message"]
    assert "namespace" in create_bad(rules=[ok], namespace="nosuch")["message"]
    listed = c.call("DescribeIngress", {"clusterId": cluster, "allnamespace": 1})["data"]
    assert "bad" not in [i["ingressName"] for i in listed["ingressList"]]
    # Unknown ingress for Modify and Delete.
    for action in ("ModifyIngress", "DeleteIngress"):
        res = c.call(action, {"clusterId": cluster, "ingressName": "nosuch"})
        assert res["code"] == 5000 and "nosuch" in res["message"], res
    # Modify checks the rules as Create does, and a refused change changes nothing.
    res = c.call("CreateIngress", {"clusterId": cluster, "ingressName": "one", "rules": [ok]})
    assert res["code"] == 0, res
    cert_free = {**rule("ok.example.com", "/y", "blue"), "protocol": "https"}
    res = c.call("ModifyIngress", {"clusterId": cluster, "ingressName": "one",
                                   "rules": [ok, cert_free]})  # fmt: skip
    assert res["code"] == 4000 and "rules.1" in res["message"], res
    assert [r["url"] for r in ingress(c, cluster, "one")["rules"]] == ["/"]
    c.call("DeleteIngress", {"clusterId": cluster, "ingressName": "one"})


def test_traffic_keeps_flowing_through_a_kill_9_and_restart(
    env: tuple[Server, Client, str], colours: list[Svc]
) -> None:
    """Load balancer rules and the ingress nginx live on while openccs is down, and a
    restarted openccs takes them over (one nginx, not two) and changes them again."""
    srv, c, cluster = env
    lbsvc = create(c, cluster, lb_web("steady", replicas=2))
    names = {p["name"] for p in lbsvc.wait_normal(2)}
    vip = running_lb(lbsvc)["externalIp"]
    res = c.call(
        "CreateIngress",
        {
            "clusterId": cluster,
            "ingressName": "steady",
            "rules": [rule("steady.example.com", "/", "blue")],
        },
    )
    assert res["code"] == 0, res
    ing_ip = running_ingress(c, cluster, "steady")["ingressIp"]
    until("both paths answer", lambda: names_via(vip) == names
          and via(ing_ip, "steady.example.com") == "blue", 30)  # fmt: skip
    masters = ingress_nginx_pids(srv)
    srv.kill9()
    assert names_via(vip) == names
    assert via(ing_ip, "steady.example.com") == "blue"
    srv.start()
    assert names_via(vip) == names
    res = c.call(
        "ModifyIngress",
        {
            "clusterId": cluster,
            "ingressName": "steady",
            "rules": [rule("steady.example.com", "/", "green")],
        },
    )
    assert res["code"] == 0, res
    until("the change applied after the restart",
          lambda: via(ing_ip, "steady.example.com") == "green", 30)  # fmt: skip
    assert ingress_nginx_pids(srv) == masters
    c.call("DeleteIngress", {"clusterId": cluster, "ingressName": "steady"})
    lbsvc.call("DeleteClusterService")
