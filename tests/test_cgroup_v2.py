"""openccs with its machines on a cgroup v2 hierarchy, on this cgroup v1 host.

The test mounts a real cgroup2 hierarchy at a private path and runs a server with
`OPENCCS_CGROUP_ROOT` pointing at it: each machine's daemons get a private mount namespace
where that hierarchy is /sys/fs/cgroup, so dockerd and runc work in v2 mode (cgroupfs
driver, containers below the machine's cgroup). A cluster with a load balanced service runs
end to end, the sampler's CPU figures come from v2 `cpu.stat`, and openccs says what it
cannot enforce.

What this host cannot show: limits enforced by v2 controllers. The kernel binds cpu, memory,
io and pids to their v1 hierarchies, so the v2 tree has none of them; `cpu.max`,
`memory.max` and `memory.swap.max` are written by the driver only on hosts that have them
(tests/test_cgroups.py covers that path on a tree laid out as the kernel lays it out).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs.client import Client
from openccs.cloud import dockerapi

from .conftest import Server
from .test_monitor import dims, latest, one_pod, sleeper
from .workload_helpers import Svc, create, make_cluster, socket_of, until, web

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or shutil.which("dockerd") is None
    or "cgroup2" not in Path("/proc/filesystems").read_text(),
    reason="needs root, dockerd and cgroup2",
)

ENFORCED = ("cpu", "memory")


@pytest.fixture(scope="module")
def v2_root() -> Iterator[Path]:
    """A cgroup2 hierarchy mounted at a private path, unmounted at the end."""
    base = Path(tempfile.mkdtemp(prefix="openccs-cg2-"))
    root = base / "cgroup2"
    root.mkdir()
    subprocess.run(["mount", "-t", "cgroup2", "none", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def env(v2_root: Path) -> Iterator[tuple[Server, Client, str]]:
    base = Path(tempfile.mkdtemp(prefix="openccs-v2-"))
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--sample-interval", "1"),
        env={"OPENCCS_CGROUP_ROOT": str(v2_root)},
    )
    try:
        srv.start()
        cluster = make_cluster(srv, machines=1)
        yield srv, srv.client(), cluster
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()
        site = (srv.data_dir / "site-id").read_text().strip()
        left = list(v2_root.glob(f"openccs-{site}*"))
        shutil.rmtree(base, ignore_errors=True)
        assert left == [], f"sweep left cgroups in the v2 tree: {left}"


def site_of(srv: Server) -> str:
    return (srv.data_dir / "site-id").read_text().strip()


def node(c: Client, cluster: str) -> dict[str, Any]:
    (n,) = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    return dict(n)


def missing_controllers(root: Path) -> list[str]:
    have = (root / "cgroup.controllers").read_text().split()
    return [c for c in ENFORCED if c not in have]


def test_machine_daemons_see_a_v2_host(v2_root: Path, env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    ins = node(c, cluster)["instanceId"]
    sock = socket_of(srv, ins)
    info = dockerapi.request(sock, "GET", "/info").json()
    assert info["CgroupVersion"] == "2" and info["CgroupDriver"] == "cgroupfs"
    machine = v2_root / f"openccs-{site_of(srv)}" / ins
    daemons = {int(p) for p in (machine / "system" / "cgroup.procs").read_text().split()}
    pid = int((Path("/run/openccs") / site_of(srv) / ins / "docker.pid").read_text())
    assert pid in daemons  # dockerd itself, in the machine's system cgroup
    assert (
        "0::/" + str(machine.relative_to(v2_root)) + "/system"
        in Path(f"/proc/{pid}/cgroup").read_text()
    )
    # The daemons' mounts stay in their own namespace: the host's /sys/fs/cgroup is v1.
    assert Path(f"/proc/{pid}/ns/mnt").resolve() != Path("/proc/self/ns/mnt").resolve()
    assert not (Path("/sys/fs/cgroup") / "cgroup.controllers").exists()


def test_service_with_a_load_balancer_runs(v2_root: Path, env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    spec = web("front", replicas=2)
    spec["accessType"] = "LoadBalancer"
    spec["portMappings"] = [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}]
    svc = create(c, cluster, spec)
    try:
        pods = svc.wait_normal(2)

        def running() -> Any:
            i = svc.info()
            return i if i["lbStatus"] == "Running" and i["externalIp"] else None

        vip = until("the load balancer Running", running, 60)["externalIp"]

        def answered() -> set[str]:
            seen = set()
            for _ in range(20):
                with contextlib.suppress(httpx.HTTPError):
                    seen.add(httpx.get(f"http://{vip}/index.html", timeout=2).text.strip())
            return seen if seen == {p["name"] for p in pods} else set()

        until("both pods answer behind the VIP", answered, 60)
        # The pods' containers are below the machine's cgroup in the v2 tree.
        ins = node(c, cluster)["instanceId"]
        machine = v2_root / f"openccs-{site_of(srv)}" / ins
        ids = [p["containers"][0]["containerId"] for p in pods]
        for cid in ids:
            (found,) = [d for d in machine.iterdir() if d.name.startswith(cid[:12])]
            assert (found / "cpu.stat").read_text().startswith("usage_usec ")
    finally:
        svc.call("DeleteClusterService")


def test_sampler_cpu_comes_from_cpu_stat(v2_root: Path, env: tuple[Server, Client, str]) -> None:
    _srv, c, cluster = env
    # A duty-cycled loop: with no cpu controller in this tree nothing would cap a plain spin.
    busy = "while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; usleep 20000; done"
    burn = create(c, cluster, sleeper("burn", command="sh", arguments=["-c", busy]))
    idle = create(c, cluster, sleeper("idle"))
    try:
        burn_pod, burn_cid = one_pod(burn)
        idle_pod, idle_cid = one_pod(idle)

        def separated() -> Any:
            b = latest(c, "container_cpu_used", dims(cluster, "burn", burn_pod, burn_cid))
            i = latest(c, "container_cpu_used", dims(cluster, "idle", idle_pod, idle_cid))
            if b is None or i is None:
                return None
            return (b, i) if b > 0.05 and b > 5 * i else None

        b, i = until("the busy pod measured above the idle one", separated, timeout=120)
        assert b < 1.5 and i < 0.02
        dc = latest(c, "dc_cpu_usage", [{"name": "docker_clusterid", "value": cluster}])
        assert dc is not None and dc > 0
        # Memory: only where the v2 tree has the memory controller (memory.current).
        mem = latest(c, "container_mem_used", dims(cluster, "burn", burn_pod, burn_cid))
        assert (mem is None) == ("memory" in missing_controllers(v2_root))
    finally:
        burn.call("DeleteClusterService")
        idle.call("DeleteClusterService")


def test_missing_controllers_are_said_plainly(
    v2_root: Path, env: tuple[Server, Client, str]
) -> None:
    srv, c, cluster = env
    missing = missing_controllers(v2_root)
    if not missing:
        pytest.skip("this host's v2 tree has cpu and memory: every limit is enforced")
    # One warning at start naming what is not enforced.
    warnings = [
        ln for ln in srv.log_path.read_text().splitlines()
        if "level=warning" in ln and "machine limits not enforced" in ln
    ]  # fmt: skip
    assert len(warnings) == 1, warnings
    assert f"controllers={','.join(missing)}" in warnings[0]
    # The doctor lists them, and they are no reason to fail.
    r = srv.cli("doctor", check=False)
    assert "cgroup v2 at " + str(v2_root) in r.stdout
    for controller in missing:
        assert f"[--] cgroup controller {controller}: not available" in r.stdout, r.stdout
    # The API keeps showing the instance type's figures.
    n = node(c, cluster)
    assert (int(n["cpu"]), int(n["mem"])) == (2000, 2048)  # millicores, MiB


def machine_processes(srv: Server, ins: str) -> list[int]:
    needle = f"/run/openccs/{site_of(srv)}/{ins}/"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
    return found


def test_deleting_the_cluster_leaves_nothing_in_the_v2_tree(
    v2_root: Path, env: tuple[Server, Client, str]
) -> None:
    srv, c, cluster = env
    ins = node(c, cluster)["instanceId"]
    machine = v2_root / f"openccs-{site_of(srv)}" / ins
    assert machine.is_dir() and machine_processes(srv, ins)
    res = c.call("DeleteCluster", {"clusterId": cluster})
    assert res["code"] == 0, res
    assert srv.wait_task(res["data"]["requestId"], timeout=120)["status"] == "succ"
    assert not machine.exists()
    assert not (v2_root / f"openccs-{site_of(srv)}").exists()  # the site's, once empty
    assert machine_processes(srv, ins) == []
    assert not (srv.data_dir / "machines" / ins).exists()


def test_sweep_removes_what_a_killed_server_left(
    v2_root: Path, env: tuple[Server, Client, str]
) -> None:
    srv, c, _ = env
    cluster = make_cluster(srv, machines=1)
    svc: Svc = create(c, cluster, web("last", replicas=1))
    svc.wait_normal(1)
    ins = node(c, cluster)["instanceId"]
    site = site_of(srv)
    assert (v2_root / f"openccs-{site}" / ins).is_dir()
    srv.kill9()
    removed = srv.cli("sweep", check=False)
    assert removed.returncode == 0, removed.stderr
    assert not (v2_root / f"openccs-{site}").exists()
    assert machine_processes(srv, ins) == []
