"""kubectl's streams and metrics against a real cluster: exec (with and without a terminal),
attach, port-forward, cp, top, logs --previous, and `openccs kubeconfig`; each result
checked against the v2 API's view of the cluster."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Server
from .test_kube import Kube, Lines, kube_of, security_info
from .workload_helpers import BUSYBOX, Svc, create, make_cluster, served, until, web

pytestmark = pytest.mark.xdist_group("kube_streams")


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    base = tmp_path_factory.mktemp("kstreams")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--sample-interval", "2"))
    with served(srv):
        cluster = make_cluster(srv, machines=2)
        c = srv.client()
        assert security_info(c, cluster)["clusterExternalEndpoint"] == ""
        kubeconfig = base / "kubeconfig"
        # The command opens the external address itself.
        r = srv.cli("kubeconfig", cluster, "-o", str(kubeconfig))
        assert f"context {cluster}" in r.stderr
        info = security_info(c, cluster)
        assert info["clusterExternalEndpoint"].startswith("https://127.0.0.1:")
        yield kube_of(srv, c, cluster, base, kubeconfig, info)


@pytest.fixture(scope="module")
def web_svc(kube: Kube) -> Svc:
    svc = create(kube.c, kube.cluster, web("web", replicas=2))
    svc.wait_normal(2)
    return svc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kubeconfig_names_the_cluster_and_embeds_its_ca(kube: Kube) -> None:
    config = json.loads(kube.kubeconfig.read_text())
    assert config["current-context"] == kube.cluster
    assert stat.S_IMODE(kube.kubeconfig.stat().st_mode) == 0o600
    (entry,) = config["clusters"]
    assert entry["name"] == kube.cluster
    assert entry["cluster"]["server"] == kube.endpoint
    assert "certificate-authority-data" in entry["cluster"]
    nodes = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})["data"]["nodes"]
    got = {n["metadata"]["name"] for n in kube.json("get", "nodes")["items"]}
    assert got == {n["lanIp"] for n in nodes}
    # --internal: the address the cluster's machines use; the external one stays as it was.
    r = kube.srv.cli("kubeconfig", kube.cluster, "--internal")
    internal = json.loads(r.stdout)
    info = security_info(kube.c, kube.cluster)
    assert internal["clusters"][0]["cluster"]["server"] == info["clusterInternalEndpoint"]
    assert info["clusterExternalEndpoint"] == kube.endpoint
    bad = kube.srv.cli("kubeconfig", "cls-nothing1", check=False)
    assert bad.returncode != 0 and "DescribeClusterSecurityInfo" in bad.stderr


def test_exec_runs_in_the_pod_with_its_exit_code_and_stdin(kube: Kube, web_svc: Svc) -> None:
    pods = web_svc.pods()
    pod = pods[0]["name"]
    assert kube.out("exec", pod, "--", "hostname").strip() == pod
    r = kube.run("exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stdout == "out\n" and "err" in r.stderr
    # The pod's own address, as the v2 API reports it.
    ips = kube.out("exec", pod, "--", "sh", "-c", "ip -4 -o addr show eth0")
    assert pods[0]["ip"] in ips
    # stdin reaches the process, and its end closes the process's input.
    data = "".join(f"line {i}\n" for i in range(2000))
    r = subprocess.run(["kubectl", "exec", "-i", pod, "--", "sh", "-c", "wc -l; cat"],
                       input=data, capture_output=True, text=True, timeout=60,
                       env=kube.env())  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("2000\n")
    # A container that is not there: kubectl reports it, nothing runs.
    r = kube.run("exec", pod, "-c", "nothing", "--", "true", check=False)
    assert r.returncode != 0 and "nothing" in r.stderr


def test_an_exec_session_outlives_the_request_read_deadline(kube: Kube, web_svc: Svc) -> None:
    # The listeners close a request that has not arrived whole within 10 s
    # (--request-read-timeout); an upgraded session is no longer a request being read.
    pod = web_svc.pods()[0]["name"]
    r = kube.run("exec", pod, "--", "sh", "-c", "sleep 12; echo still here", check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == "still here\n"


def test_exec_with_a_terminal(kube: Kube, web_svc: Svc) -> None:
    pod = web_svc.pods()[0]["name"]
    # script gives kubectl a pseudo-terminal; what is typed reaches an interactive shell
    # through the pod's own terminal, and the shell's exit code comes back.
    typed = "tty; echo marker-$((6*7)); exit 5\n"
    shell = subprocess.Popen(["script", "-qec", f"kubectl exec -it {pod} -- sh", "/dev/null"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=kube.env())  # fmt: skip
    assert shell.stdin is not None
    try:
        time.sleep(2)  # the shell's prompt first, as a person would wait for it
        shell.stdin.write(typed.encode())
        shell.stdin.flush()
        out, _ = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:
            shell.kill()
    text = out.decode(errors="replace")
    assert "/dev/pts/" in text and "marker-42" in text, text
    assert "BusyBox" in text  # the interactive shell's banner: it saw a terminal
    assert shell.returncode == 5, text


def test_attach_streams_the_container_output(kube: Kube) -> None:
    loop = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done"
    svc = create(kube.c, kube.cluster, {
        "serviceName": "ticker", "replicas": 1, "accessType": "None",
        "containers": [{"containerName": "t", "image": BUSYBOX, "command": "sh",
                        "arguments": ["-c", loop]}],
    })  # fmt: skip
    pod = svc.wait_normal(1)[0]["name"]
    attached = Lines(kube.popen("attach", pod))
    try:
        first = attached.next(30)
        assert first is not None and first.startswith("tick-"), first
        n = int(first.split("-")[1])
        attached.until(f"tick-{n + 3}", 30)
    finally:
        attached.close()
    svc.call("DeleteClusterService")


def _port_forward(kube: Kube, target: str, remote: int) -> tuple[subprocess.Popen[bytes], int]:
    local = free_port()
    proc = subprocess.Popen(["kubectl", "port-forward", target, f"{local}:{remote}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=kube.env())  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if f"127.0.0.1:{local}" not in line:
        proc.kill()
        raise AssertionError(f"kubectl port-forward: {line} {proc.communicate(timeout=10)}")
    return proc, local


def test_port_forward_to_a_pod_and_to_a_service(kube: Kube, web_svc: Svc) -> None:
    pods = {p["name"] for p in web_svc.pods()}
    pod = sorted(pods)[0]
    proc, local = _port_forward(kube, f"pod/{pod}", 80)
    try:
        for _ in range(3):  # one tunnel, several connections
            got = httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=10).text.strip()
            assert got == pod
        # curl as well, and a body larger than one frame in both directions.
        r = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{local}/index.html"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        assert r.stdout.strip() == pod, r.stderr
    finally:
        proc.terminate()
        proc.wait(10)
    # svc/web: kubectl picks a pod behind the service and maps 8080 to its targetPort 80.
    proc, local = _port_forward(kube, "svc/web", 8080)
    try:
        got = httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=10).text.strip()
        assert got in pods
    finally:
        proc.terminate()
        proc.wait(10)
    # Like the kubelet, the connection is made in the pod's network namespace: a port bound
    # to the pod's loopback is reached, though not from outside the pod.
    svc = create(kube.c, kube.cluster, {
        "serviceName": "loopback", "replicas": 1, "accessType": "None",
        "containers": [{"containerName": "h", "image": BUSYBOX, "command": "sh",
                        "arguments": ["-c", "mkdir -p /www && echo loopback-only >"
                                      " /www/index.html && exec httpd -f -p 127.0.0.1:8081"
                                      " -h /www"]}],
    })  # fmt: skip
    lo = svc.wait_normal(1)[0]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{lo['ip']}:8081/index.html", timeout=5)
    proc, local = _port_forward(kube, f"pod/{lo['name']}", 8081)
    try:
        got = httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=10).text.strip()
        assert got == "loopback-only"
    finally:
        proc.terminate()
        proc.wait(10)
    svc.call("DeleteClusterService")
    # A port nothing listens on: the connection fails and kubectl says why.
    proc, local = _port_forward(kube, f"pod/{pod}", 81)
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"error forwarding port 81" in err


@pytest.fixture(scope="module")
def pipes(kube: Kube) -> Iterator[str]:
    """A pod that echoes what it reads on 9100 and floods zeros on 9102 (one connection at
    a time each, busybox nc)."""
    script = (
        "printf '#!/bin/sh\\nexec cat\\n' > /echo;"
        " printf '#!/bin/sh\\nexec cat /dev/zero\\n' > /flood; chmod +x /echo /flood;"
        " (while true; do nc -l -p 9100 -e /echo; done) &"
        " (while true; do nc -l -p 9102 -e /flood; done) &"
        " exec sleep 1000000"
    )
    svc = create(kube.c, kube.cluster, {
        "serviceName": "pipes", "replicas": 1, "accessType": "None",
        "containers": [{"containerName": "p", "image": BUSYBOX, "command": "sh",
                        "arguments": ["-c", script]}],
    })  # fmt: skip
    yield svc.wait_normal(1)[0]["name"]
    svc.call("DeleteClusterService")


def _sockets(kube: Kube, pod: str, port: int, state: str) -> list[str]:
    """The pod's TCP sockets of `port` in `state` (01 ESTABLISHED, 0A LISTEN), as
    /proc/net/tcp and tcp6 in its network namespace list them."""
    out = kube.out("exec", pod, "--", "cat", "/proc/net/tcp", "/proc/net/tcp6")
    rows = [r.split() for r in out.splitlines() if r.split()[:1] != ["sl"]]
    mark = f":{port:04X}"
    return [" ".join(r) for r in rows if r[3] == state and mark in f"{r[1]} {r[2]}"]


def _established(kube: Kube, pod: str, port: int) -> list[str]:
    return _sockets(kube, pod, port, "01")


def _listening(kube: Kube, pod: str, port: int) -> list[str]:
    """(The pod's nc listens again a moment after each connection.)"""
    return _sockets(kube, pod, port, "0A")


def test_port_forward_carries_64_mib_both_ways_byte_exact(kube: Kube, pipes: str) -> None:
    payload = os.urandom(64 << 20)
    until("the pod listening", lambda: _listening(kube, pipes, 9100), 30)
    proc, local = _port_forward(kube, f"pod/{pipes}", 9100)
    try:
        got = hashlib.sha256()
        received = 0
        with socket.create_connection(("127.0.0.1", local), timeout=60) as sock:

            def send() -> None:
                view = memoryview(payload)
                for pos in range(0, len(payload), 1 << 20):  # 1 MiB writes
                    sock.sendall(view[pos : pos + (1 << 20)])

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            while received < len(payload):
                chunk = sock.recv(1 << 20)
                assert chunk, f"the echo ended after {received} bytes"
                got.update(chunk)
                received += len(chunk)
            sender.join(60)
            # The client's end closes the pod's (its cat sees the end of its input).
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
        assert received == len(payload)
        assert got.hexdigest() == hashlib.sha256(payload).hexdigest()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_client_that_leaves_mid_transfer_leaves_no_pod_connection(kube: Kube, pipes: str) -> None:
    proc, local = _port_forward(kube, f"pod/{pipes}", 9102)
    try:
        # The local client goes while the pod floods; the tunnel stays and serves another.
        for _ in range(2):
            until("the pod listening", lambda: _listening(kube, pipes, 9102), 30)
            with socket.create_connection(("127.0.0.1", local), timeout=30) as sock:
                read = 0
                while read < 8 << 20:
                    chunk = sock.recv(1 << 20)
                    assert chunk and chunk.count(0) == len(chunk)
                    read += len(chunk)
            until("the pod's end closed", lambda: not _established(kube, pipes, 9102), 60)
        # kubectl itself goes mid-transfer: the WebSocket is cut, the pod connection closed.
        until("the pod listening", lambda: _listening(kube, pipes, 9102), 30)
        sock = socket.create_connection(("127.0.0.1", local), timeout=30)
        try:
            assert len(sock.recv(1 << 20)) > 0
            until("flooding", lambda: _established(kube, pipes, 9102), 30)
            proc.kill()
            proc.wait(10)
            until("the pod's end closed", lambda: not _established(kube, pipes, 9102), 60)
        finally:
            sock.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def test_cp_copies_files_in_and_out(kube: Kube, web_svc: Svc, tmp_path: Path) -> None:
    pod = web_svc.pods()[0]["name"]
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    kube.run("cp", str(src), f"{pod}:/tmp/in.bin")
    sums = kube.out("exec", pod, "--", "md5sum", "/tmp/in.bin").split()[0]
    import hashlib

    assert sums == hashlib.md5(src.read_bytes()).hexdigest()
    back = tmp_path / "out.bin"
    kube.run("cp", f"{pod}:/tmp/in.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


def _cores(quantity: str) -> float:
    if quantity.endswith("m"):
        return int(quantity[:-1]) / 1000
    return float(quantity)


def test_top_shows_nodes_and_a_busy_pod(kube: Kube, web_svc: Svc) -> None:
    svc = create(kube.c, kube.cluster, {
        "serviceName": "busy", "replicas": 1, "accessType": "None",
        "containers": [{"containerName": "spin", "image": BUSYBOX, "command": "sh",
                        "arguments": ["-c", "while :; do :; done"]}],
    })  # fmt: skip
    busy = svc.wait_normal(1)[0]
    discovery = kube.out("api-versions")
    assert "metrics.k8s.io/v1beta1" in discovery

    def busy_row() -> list[str] | None:
        r = kube.run("top", "pod", "--no-headers", check=False)
        rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
        row = rows.get(busy["name"])
        # A spinning loop gets what the machine's other load leaves it (on a busy test host,
        # less than a tenth of a core); the idle web pods next to it next to nothing.
        idle = [_cores(r[1]) for n, r in rows.items() if n.startswith("web-")]
        return row if row and _cores(row[1]) >= max([0.05, *(10 * c for c in idle)]) else None

    row = until("the busy pod's CPU in kubectl top", busy_row, timeout=90)
    assert row[2].endswith("Mi")
    # Per container, and through the API as PodMetrics.
    assert "spin" in kube.out("top", "pod", busy["name"], "--containers")
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/{busy['name']}"
    raw = json.loads(kube.out("get", "--raw", path))
    assert raw["kind"] == "PodMetrics" and raw["containers"][0]["name"] == "spin"
    assert raw["containers"][0]["usage"]["cpu"].endswith("n")
    nodes = kube.c.call("DescribeClusterInstances", {"clusterId": kube.cluster})["data"]["nodes"]
    out = kube.out("top", "node", "--no-headers")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert set(rows) == {n["lanIp"] for n in nodes}
    assert _cores(rows[busy["nodeIp"]][1]) >= 0.05
    assert rows[busy["nodeIp"]][2].endswith("%")
    # Every pod with samples is listed, of every namespace; and each node.
    kube.run("create", "namespace", "side")
    kube.run("create", "deployment", "idle", "-n", "side", f"--image={BUSYBOX}", "--",
             "sleep", "3600")  # fmt: skip
    (idle,) = Svc(kube.c, kube.cluster, "idle", "side").wait_normal(1)
    want = {("default", p["name"]) for p in web_svc.pods()} | {("default", busy["name"])}
    want.add(("side", idle["name"]))

    def listed() -> set[tuple[str, str]] | None:
        r = kube.run("top", "pod", "-A", "--no-headers", check=False)
        got = {tuple(line.split()[:2]) for line in r.stdout.splitlines() if line.strip()}
        return got if got >= want else None

    until("every pod in kubectl top -A", listed, timeout=90)
    side = kube.out("top", "pod", "-n", "side", "--no-headers").split()
    assert side[0] == idle["name"] and side[2].endswith("Mi")
    # Selectors apply; an unknown pod is not found.
    r = kube.run("top", "pod", "-l", "qcloud-app=nothing")
    assert r.stdout == "" and "No resources found" in r.stderr
    r = kube.run("top", "pod", "no-such-pod", check=False)
    assert r.returncode != 0 and "not found" in r.stderr
    svc.call("DeleteClusterService")
    kube.run("delete", "namespace", "side", "--timeout=120s", timeout=150)


def test_logs_previous_after_a_crash(kube: Kube) -> None:
    # The first run crashes after 30 s (time to ask for a previous run that is not there,
    # however loaded the machine); the next one stays up (time to read both logs).
    script = (
        "echo run-$(cat /proc/sys/kernel/random/uuid); "
        "if [ -e /d/ran ]; then sleep 600; else touch /d/ran; sleep 30; exit 1; fi"
    )
    svc = create(kube.c, kube.cluster, {
        "serviceName": "crasher", "replicas": 1, "accessType": "None",
        "volumes": [{"name": "d", "volumeType": "hostPath",
                     "hostPath": f"/crasher-{uuid.uuid4().hex[:8]}"}],
        "containers": [{"containerName": "c", "image": BUSYBOX, "command": "sh",
                        "arguments": ["-c", script],
                        "volumeMounts": [{"volumeName": "d", "mountPath": "/d"}]}],
    })  # fmt: skip
    pod = until("a pod", lambda: (svc.pods() or [None])[0], timeout=60)["name"]
    r = kube.run("logs", pod, "--previous", check=False)
    assert r.returncode != 0 and "previous terminated container" in r.stderr

    def restarted_and_running() -> bool:
        p = kube.json("get", "pod", pod)
        st = (p["status"].get("containerStatuses") or [{}])[0]
        return st.get("restartCount", 0) >= 1 and "running" in st.get("state", {})

    until("a restart", restarted_and_running, timeout=120)
    current = kube.out("logs", pod).strip()
    previous = kube.out("logs", pod, "--previous").strip()
    assert re.fullmatch(r"run-[0-9a-f-]{36}", current), current
    assert re.fullmatch(r"run-[0-9a-f-]{36}", previous), previous
    assert current != previous
    # The v2 API shows the restart too.
    v2 = next(p for p in svc.pods() if p["name"] == pod)
    assert int(v2.get("restartCount", 0)) >= 1
    svc.call("DeleteClusterService")


def test_a_client_that_falls_back_to_spdy_is_told_why(kube: Kube, web_svc: Svc) -> None:
    pod = web_svc.pods()[0]["name"]
    env = {**kube.env(), "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    r = subprocess.run(["kubectl", "exec", pod, "--", "true"], capture_output=True, text=True,
                       timeout=60, env=env)  # fmt: skip
    assert r.returncode != 0 and "SPDY is not supported" in r.stderr, r.stderr
    env = {**kube.env(), "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    r = subprocess.run(["kubectl", "port-forward", f"pod/{pod}", f"{free_port()}:80"],
                       capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert r.returncode != 0 and "SPDY is not supported" in r.stderr, r.stderr
    # Without credentials there is no stream at all.
    resp = httpx.get(
        f"{kube.endpoint}/api/v1/namespaces/default/pods/{pod}/exec?command=true",
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                 "Sec-WebSocket-Protocol": "v5.channel.k8s.io"},
        verify=kube.verify, timeout=10,
    )  # fmt: skip
    assert resp.status_code == 403
