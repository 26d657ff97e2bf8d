"""kubectl streams benchmark (issue 18): port-forward throughput against a direct connection
to the pod, and exec round trips against docker's own exec on the machine.

One `openccs serve` (SQLite) with a cluster of 2 real machines; the kubeconfig is written
by `openccs kubeconfig`. One pod (busybox) serves a `--megabytes` file with httpd on port
80 and discards what it receives on port 9001 (nc).

* Download: `curl` of the file from the host, straight to the pod's address (pods are
  routed from the host) and through `kubectl port-forward pod/NAME` (WebSocket carrying
  SPDY to openccs, then TCP made in the pod's network namespace); `--rounds` each, the
  median MB/s. Target: port-forward >= 50 % of direct.
* Upload: the same number of bytes written to the nc sink, direct and through the
  port-forward (time until the pod closes the connection).
* exec: `kubectl exec POD -- true` wall time (a kubectl process: it reads the pod, then runs
  the command over WebSocket), against `docker exec CONTAINER true` on the machine's dockerd;
  and the echo round trip of one line through a running `kubectl exec -i POD -- cat`,
  against `docker exec -i CONTAINER cat`.

Everything is removed at the end, also on failure. Run as root:
`.venv/bin/python bench/kubestreams.py` (replaces its section of bench/RESULTS.md unless
`--no-write`). The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import git_commit, machine_facts, publish

from tests.conftest import Server
from tests.workload_helpers import BUSYBOX, create, make_cluster, node_of, socket_of

TITLE = "## kubectl streams: port-forward throughput and exec round trips"
TARGET_RATIO = 0.5


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q / 100 * len(ordered) + 0.5) - 1)]


def ms(values: Sequence[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:.1f} / {pct(values, 90) * 1000:.1f} /"
        f" {pct(values, 99) * 1000:.1f}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def download(url: str) -> float:
    """MB/s of one curl download."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()  # fmt: skip
    size, seconds = int(out[0]), float(out[1])
    return size / seconds / 1e6


def upload(host: str, port: int, size: int) -> float:
    """MB/s of writing `size` bytes until the receiver closes."""
    chunk = b"\0" * (256 * 1024)
    time.sleep(0.5)  # the sink's nc listening again after the previous round
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=120) as s:
        sent = 0
        while sent < size:
            s.sendall(chunk)
            sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    return sent / (time.perf_counter() - started) / 1e6


class PortForward:
    def __init__(self, env: dict[str, str], pod: str, remote: int) -> None:
        self.local = free_port()
        self.proc = subprocess.Popen(
            ["kubectl", "port-forward", f"pod/{pod}", f"{self.local}:{remote}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if str(self.local) not in line:
            raise RuntimeError(f"kubectl port-forward did not start: {line!r}")
        # Its "Handling connection" lines must not fill the pipe.
        os.set_blocking(self.proc.stdout.fileno(), False)

    def drain(self) -> None:
        assert self.proc.stdout is not None
        while select.select([self.proc.stdout], [], [], 0)[0]:
            if not self.proc.stdout.read(65536):
                break

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def echo_rtts(cmd: list[str], env: dict[str, str], n: int) -> list[float]:
    """Round trips of one line through `cat` running behind `cmd`."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    out: list[float] = []
    try:
        for i in range(n + 3):
            line = f"ping {i}\n".encode()
            started = time.perf_counter()
            proc.stdin.write(line)
            proc.stdin.flush()
            got = proc.stdout.readline()
            if got != line:
                raise RuntimeError(f"echo: sent {line!r}, got {got!r}")
            if i >= 3:  # the first lines include the command's start
                out.append(time.perf_counter() - started)
    finally:
        proc.stdin.close()
        proc.wait(30)
    return out


def timed(cmd: list[str], env: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=60)
        out.append(time.perf_counter() - started)
    return out


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubectl_version() -> str:
    out = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True
    ).stdout
    return str(json.loads(out)["clientVersion"]["gitVersion"]) if out else "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megabytes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="openccs-bench-kstreams-"))
    srv = Server(data_dir=base / "data", db_url=None)
    rows: list[tuple[str, ...]] = []
    exec_rows: list[tuple[str, str, str]] = []
    load: list[float] = []
    idle = 0.0
    try:
        srv.start()
        cluster = make_cluster(srv, machines=2)
        kubeconfig = base / "kubeconfig"
        srv.cli("kubeconfig", cluster, "-o", str(kubeconfig))
        home = base / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
        # The sink reads until the sender is done and only then closes: a receiver that
        # half-closed first would end the forwarding (kubectl stops when the pod's side ends).
        script = (
            "printf '#!/bin/sh\\ncat > /dev/null\\n' > /sink; chmod +x /sink;"
            " (while true; do nc -l -p 9001 -e /sink; done) &"
            f" mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count={args.megabytes}"
            " 2>/dev/null; exec httpd -f -p 80 -h /www"
        )
        c = srv.client()
        svc = create(c, cluster, {
            "serviceName": "bulk", "replicas": 1, "accessType": "None",
            "containers": [{"containerName": "bulk", "image": BUSYBOX, "command": "sh",
                            "arguments": ["-c", script]}],
        })  # fmt: skip
        pod = svc.wait_normal(1, timeout=180)[0]
        name, ip = pod["name"], pod["ip"]
        # httpd starts once the file is written (which takes a while on a busy machine).
        deadline = time.monotonic() + 180
        while subprocess.run(["curl", "-sfI", "-o", "/dev/null", f"http://{ip}/big"]).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("the pod's httpd did not answer within 180 s")
            time.sleep(1)
        load.append(os.getloadavg()[0])
        size = args.megabytes * 1024 * 1024
        direct_dl = [download(f"http://{ip}/big") for _ in range(args.rounds)]
        direct_ul = [upload(ip, 9001, size) for _ in range(args.rounds)]
        assert srv.proc is not None
        # What the server uses with nothing to carry (its samplers and loops): at a low rate
        # it is a good part of the CPU per GB, so it is also taken out of the figure.
        idle_from = (cpu_seconds(srv.proc.pid), time.monotonic())
        time.sleep(5)
        idle = (cpu_seconds(srv.proc.pid) - idle_from[0]) / (time.monotonic() - idle_from[1])
        cores: dict[str, tuple[float, float, float, float, float]] = {}
        pf_dl: list[float] = []
        pf_ul: list[float] = []
        for what, port, results in (("download", 80, pf_dl), ("upload", 9001, pf_ul)):
            pf = PortForward(env, name, port)
            try:
                before = (cpu_seconds(srv.proc.pid), cpu_seconds(pf.proc.pid), time.monotonic())
                for _ in range(args.rounds):
                    if what == "download":
                        results.append(download(f"http://127.0.0.1:{pf.local}/big"))
                    else:
                        results.append(upload("127.0.0.1", pf.local, size))
                    pf.drain()
                wall = time.monotonic() - before[2]
                used = (cpu_seconds(srv.proc.pid) - before[0], cpu_seconds(pf.proc.pid) - before[1])
                gb = size * args.rounds / 1e9
                net = max(0.0, used[0] - idle * wall) / gb
                cores[what] = (used[0] / wall, used[1] / wall, used[0] / gb, net, used[1] / gb)
            finally:
                pf.close()
        for what, direct, tunnel in (("download", direct_dl, pf_dl), ("upload", direct_ul, pf_ul)):
            d, t = statistics.median(direct), statistics.median(tunnel)
            server, kubectl, server_gb, server_net, kubectl_gb = cores[what]
            rows.append((what, f"{d:,.0f}", f"{t:,.0f}", f"{t / d:.2f}", f"{server:.2f}",
                         f"{kubectl:.2f}", f"{server_gb:.2f}", f"{server_net:.2f}",
                         f"{kubectl_gb:.2f}"))  # fmt: skip
        # exec
        instance = node_of(c, cluster, pod["nodeIp"])
        sock = socket_of(srv, instance)
        docker = ["docker", "-H", f"unix://{sock}"]
        cid = subprocess.run(
            [*docker, "ps", "-q", "--filter", f"label=openccs.pod={name}",
             "--filter", "label=openccs.role=app"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]  # fmt: skip
        k_exec = timed(["kubectl", "exec", name, "--", "true"], env, args.samples)
        d_exec = timed([*docker, "exec", cid, "true"], env, args.samples)
        exec_rows.append(("`exec -- true` (whole command)", ms(k_exec), ms(d_exec)))
        k_echo = echo_rtts(["kubectl", "exec", "-i", name, "--", "cat"], env, args.samples * 10)
        d_echo = echo_rtts([*docker, "exec", "-i", cid, "cat"], env, args.samples * 10)
        exec_rows.append(("one line echoed by `cat` (session open)", ms(k_echo), ms(d_echo)))
        load.append(os.getloadavg()[0])
    except Exception:
        traceback.print_exc()
        return 0
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()
        shutil.rmtree(base, ignore_errors=True)  # the data directory and its 200 MiB file

    facts = machine_facts()
    ratio = min(float(r[3]) for r in rows)
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    lines = [
        TITLE,
        "",
        "Written by `bench/kubestreams.py`, which replaces this section on every run.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC",
        f"- openccs commit: {git_commit()}",
        f"- machine: {facts['cpus']} CPUs ({facts['cpu model']}), {facts['memory']} RAM,"
        f" {facts['kernel']}, {facts['dockerd']}",
        f"- kubectl: {kubectl_version()}",
        f"- load average (1 min) at the start and the end of the measurements:"
        f" {' and '.join(f'{x:.1f}' for x in load)} (the machine is shared: a high load"
        " slows the three processes of the port-forward path more than the kernel's direct"
        " path)",
        f"- transfer: {args.megabytes} MiB per round, {args.rounds} rounds, median; the pod"
        " on a machine of 2 CPUs; curl (download) and a Python socket (upload) on the host",
        f"- the openccs server idle (nothing forwarded, 5 s before the rounds): {idle:.3f} cores",
        "",
        "| direction | direct to the pod MB/s | kubectl port-forward MB/s | ratio"
        " | openccs cores | kubectl cores | openccs CPU s/GB | openccs s/GB less idle"
        " | kubectl CPU s/GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "The cores columns: CPU used by the openccs server and by kubectl during the"
        " port-forward rounds (the machine has 2). The direct path is the kernel's alone; the"
        " port-forward path has kubectl (TLS, WebSocket, SPDY) and openccs (the same, then"
        " the pod's socket) in it, each a process that shares the machine's 2 CPUs with"
        " whatever else runs. CPU seconds per GB carried do not depend on how busy the machine"
        " is (as far as a shared machine lets them): when neither process has a core to"
        " itself, the port-forward's rate is about the CPU share it gets divided by these."
        " 'Less idle' takes out what the server used idle over the same time.",
        "",
        f"{args.samples} commands, {args.samples * 10} echoes; p50 / p90 / p99 ms:",
        "",
        "| exec | kubectl (WebSocket, openccs, dockerd) | docker exec on the machine |",
        "| --- | ---: | ---: |",
        *(f"| {a} | {b} | {c_} |" for a, b, c_ in exec_rows),
        "",
        "| target | result | figure |",
        "| --- | --- | --- |",
        f"| port-forward >= 50 % of direct | {verdict} | lowest ratio {ratio:.2f} |",
    ]
    return publish(TITLE, lines, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
