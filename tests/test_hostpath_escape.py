"""A tenant's symbolic links on a machine's disk never lead a hostPath volume out of it: the
pod fails with a FailedMount event saying why, its service does not start, and nothing of
the host is seen, also when the link is swapped in while the pod starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openccs.client import Client
from openccs.cloud import safepath

from .conftest import Server
from .workload_helpers import BUSYBOX, RUN, Svc, cluster_env, create, until


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("hostpath")
    srv = Server(data_dir=base / "data", db_url=None)
    with cluster_env(srv, machines=1) as env:
        yield env


def shell(name: str, script: str, host_path: str, mount: str, mode: str = "rw",
          replicas: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "serviceName": name,
        "replicas": replicas,
        "accessType": "None",
        "volumes": [{"name": "v", "volumeType": "hostPath", "hostPath": host_path}],
        "containers": [
            {
                "containerName": "c",
                "image": BUSYBOX,
                "command": "/bin/sh",
                "arguments": ["-c", script],
                "volumeMounts": [{"volumeName": "v", "mountPath": mount, "mode": mode}],
            }
        ],
    }


def machine(c: Client, cluster: str) -> str:
    nodes = c.call("DescribeClusterInstances", {"clusterId": cluster})["data"]["nodes"]
    return str(nodes[0]["instanceId"])


def disk(srv: Server, node: str) -> Path:
    return srv.data_dir / "machines" / node / "rootfs"


def logs(svc: Svc) -> str:
    res = svc.c.call("DescribeInstanceLog", svc.ref())
    if res["code"] != 0:
        return ""
    return "\n".join(
        cl.get("log") or "" for p in res["data"]["podLog"] for cl in p.get("containerLog") or []
    )


def failed_mounts(svc: Svc) -> list[dict[str, Any]]:
    return [e for e in svc.events() if e["reason"] == "FailedMount"]


def host_names(srv: Server) -> set[str]:
    """What a listing of the host would show: the data directory's secrets, the host's /."""
    return {"credentials.json", "openccs.db", "proc", "etc", "usr"}


def assert_refused(srv: Server, svc: Svc, link: str) -> None:
    def refused() -> list[dict[str, Any]]:
        seen = set(logs(svc).split())
        assert not seen & host_names(srv), f"{svc.name} sees the host: {sorted(seen)}"
        return failed_mounts(svc)

    events = until(f"{svc.name}: FailedMount", refused, 90)
    message = events[0]["message"]
    assert 'volume "v"' in message and link in message, message
    assert "leaves the machine's disk" in message, message
    assert events[0]["level"] == "Warning"
    until(f"{svc.name} Abnormal", lambda: svc.info()["status"] == "Abnormal", 30)
    pods = svc.pods()
    assert pods and all(p["status"] != "Running" for p in pods), pods
    seen = set(logs(svc).split())
    assert not seen & host_names(srv), seen


def test_the_reproducer_lists_nothing_of_the_host(env: tuple[Server, Client, str]) -> None:
    srv, c, cluster = env
    node = machine(c, cluster)
    sym1 = create(c, cluster, shell("sym1", "ln -s / /data/escape; sleep 3600", "/data", "/data"))
    sym1.wait_normal(1)
    until("the link on the machine's disk", (disk(srv, node) / "data" / "escape").is_symlink)
    sym2 = create(
        c, cluster, shell("sym2", f"ls /host{srv.data_dir}; sleep 3600", "/data/escape", "/host",
                          mode="ro"),
    )  # fmt: skip
    assert_refused(srv, sym2, "/data/escape")
    assert "is a symbolic link to '/'" in failed_mounts(sym2)[0]["message"]
    # Read-write is refused the same way, and nothing is written on the host.
    marker = srv.data_dir / "written-by-tenant"
    sym3 = create(
        c, cluster, shell("sym3", f"touch /host{marker}; sleep 3600", "/data/escape", "/host"),
    )  # fmt: skip
    assert_refused(srv, sym3, "/data/escape")
    assert not marker.exists()
    for svc in (sym1, sym2, sym3):
        svc.call("DeleteClusterService")


def test_links_out_at_every_component_are_refused_and_links_inside_work(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    node = machine(c, cluster)
    root = disk(srv, node)
    data = str(srv.data_dir)
    # As a tenant's container would leave them on the disk: (link, its target, hostPath).
    cases = {
        "first": ("/l1", "/", f"/l1{data}"),
        "middle": ("/l2/a/b", "/", f"/l2/a/b{data}"),
        "last": ("/l3/a/b", data, "/l3/a/b"),
        "relative": ("/l4/a", "../../../../../../../..", f"/l4/a{data}"),
        "dotdot-in-target": ("/l5/a", "x/../../../../../../../..", f"/l5/a{data}"),
        "loop": ("/l6", "l6", "/l6"),
    }
    for link, target, _ in cases.values():
        where = root / link.lstrip("/")
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(target)
    (root / "in" / "real").mkdir(parents=True)
    (root / "in" / "real" / "inside-marker").write_text("")
    (root / "in" / "alias").symlink_to("real/../real")
    svcs = {
        name: create(c, cluster, shell(f"esc-{name}", "ls /host; sleep 3600", path, "/host"))
        for name, (_, _, path) in cases.items()
    }
    inside = create(c, cluster, shell("inside", "ls /host; sleep 3600", "/in/alias", "/host"))
    for name, svc in svcs.items():
        assert_refused(srv, svc, cases[name][0] if name != "loop" else "/l6")
    # A link that stays on the disk is followed, and dockerd sees the mount openccs made.
    inside.wait_normal(1)
    until("the listing of the linked directory", lambda: "inside-marker" in logs(inside))
    for svc in [*svcs.values(), inside]:
        svc.call("DeleteClusterService")


def test_a_link_swapped_in_while_pods_start_never_shows_the_host(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    node = machine(c, cluster)
    flip = (
        "while true; do rm -rf /data/r; mkdir /data/r && echo in > /data/r/inside-marker;"
        " rm -rf /data/r; ln -s / /data/r; rm -f /data/r; done"
    )
    racer = create(c, cluster, shell("racer", flip, "/data", "/data"))
    racer.wait_normal(1)
    for round_ in range(2):
        victim = create(
            c, cluster, shell(f"victim{round_}", "ls /host; sleep 3600", "/data/r", "/host",
                              mode="ro", replicas=4),
        )  # fmt: skip

        def settled(v: Svc = victim) -> bool:
            pods = v.pods()
            return len(pods) == 4 and (
                all(p["status"] == "Running" for p in pods) or bool(failed_mounts(v))
            )

        until(f"victim{round_} started or refused", settled, 180)
        for e in failed_mounts(victim):
            assert "/data/r" in e["message"], e
        seen = set(logs(victim).split())
        assert not seen & host_names(srv), seen  # at most the directory of the disk
        victim.call("DeleteClusterService")
    racer.call("DeleteClusterService")
    site = (srv.data_dir / "site-id").read_text().strip()
    area = str(RUN / site / node / "binds")

    def staged() -> list[str]:
        return [p for p in safepath.mount_points() if p.startswith(area + "/")]

    until("the pods' staged mounts released", lambda: not staged(), 90)


def test_staged_mounts_are_private_and_go_with_the_sweep(
    env: tuple[Server, Client, str],
) -> None:
    """Last in this module: openccs is killed and the sweep cleans up after it."""
    srv, c, cluster = env
    node = machine(c, cluster)
    site = (srv.data_dir / "site-id").read_text().strip()
    area = str(RUN / site / node / "binds")
    kept = create(c, cluster, shell("kept", "sleep 3600", "/data/kept", "/data"))
    kept.wait_normal(1)
    assert [p for p in safepath.mount_points() if p.startswith(area + "/")]
    with open("/proc/self/mountinfo") as f:
        fields = next(line.split() for line in f if line.split()[4] == area)
    assert not any(x.startswith(("shared:", "master:")) for x in fields[6 : fields.index("-")])
    srv.kill9()
    srv.sweep()
    assert not [p for p in safepath.mount_points() if p.startswith(str(RUN / site) + "/")]
    assert (disk(srv, node) / "data" / "kept").is_dir()  # the machine's disk keeps its files
