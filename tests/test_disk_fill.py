"""The disk-fill fault, for real, on a machine with a disk of its own (`serve --machine-disks
loop`: an ext4 file system of its rootSize on a sparse image): the pod's writes fail with
ENOSPC while its writable layer or volume is full, succeed again once the fault ends, the
image on the host stays small, and nothing of the disk is left once the cluster is gone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openccs.client import Client
from openccs.timeutil import fmt_time, utcnow

from .conftest import Server
from .workload_helpers import BUSYBOX, call, create, fault, make_cluster, socket_of, until

pytestmark = pytest.mark.xdist_group("faults")

ROOT_GIB = 20  # the smallest rootSize: the image is sparse anyway
MIB = 1 << 20


def loops_of(srv: Server) -> list[str]:
    """The host's loop devices backed by this server's machine images."""
    shown = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    where = str(srv.data_dir / "machines") + "/"
    return [line for line in shown.splitlines() if where in line]


def mounts_of(srv: Server) -> list[str]:
    where = str(srv.data_dir / "machines")
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == where or p.startswith(where + "/")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("diskfill")
    srv = Server(data_dir=base / "data", db_url=None,
                 extra_args=("--health-interval", "1", "--machine-disks", "loop"))  # fmt: skip
    try:
        srv.start()
        assert not loops_of(srv)
        yield srv, srv.client(), make_cluster(srv, machines=1, root_size=ROOT_GIB)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        srv.sweep()
        # Whatever a failed test left (the sweep keeps the data: its images).
        for image in (srv.data_dir / "machines").glob("*.ext4"):
            image.unlink()


def sh(srv: Server, iid: str, pod: str, script: str) -> tuple[int, str]:
    """Run a shell script in the pod's container (docker exec through the machine's
    socket): its exit code and output (stdout and stderr)."""
    docker = ["docker", "-H", f"unix://{socket_of(srv, iid)}"]
    ids = subprocess.run([*docker, "ps", "-q", "--filter", f"label=openccs.pod={pod}",
                          "--filter", "label=openccs.role=app"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert ids, f"no running container of {pod}"
    r = subprocess.run([*docker, "exec", ids[0], "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    return r.returncode, r.stdout + r.stderr


def write_mib(srv: Server, iid: str, pod: str, path: str) -> tuple[int, str]:
    return sh(srv, iid, pod, f"dd if=/dev/zero of={path} bs=1M count=1 && sync && rm {path}")


def use_percent(srv: Server, iid: str, pod: str, path: str) -> int:
    code, out = sh(srv, iid, pod, f"df -P {path} | tail -1")
    assert code == 0, out
    return int(out.split()[4].rstrip("%"))


def image_kib(image: Path) -> int:
    """What the sparse image takes on the host's disk."""
    return os.stat(image).st_blocks // 2


def test_a_full_layer_and_volume_fail_writes_until_the_fault_ends(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    (node,) = call(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
    iid = node["instanceId"]
    root = srv.data_dir / "machines" / iid
    image = root.with_name(f"{iid}.ext4")
    # The machine's disk is its own: an ext4 file system of its rootSize, mounted by loop.
    assert str(root) in mounts_of(srv) and image.exists()
    assert os.path.getsize(image) == ROOT_GIB << 30
    assert len(loops_of(srv)) == 1
    svc = create(c, cluster, {
        "serviceName": "writer", "replicas": 1, "accessType": "None",
        "volumes": [{"name": "data", "volumeType": "hostPath", "hostPath": "/data"}],
        "containers": [{"containerName": "w", "image": BUSYBOX, "command": "sleep",
                        "arguments": ["3600"],
                        "volumeMounts": [{"volumeName": "data", "mountPath": "/data"}]}],
    })  # fmt: skip
    (pod,) = svc.wait_normal(1)
    name = pod["name"]
    assert write_mib(srv, iid, name, "/probe")[0] == 0
    before_kib = image_kib(image)

    # The writable layer: full, writes fail, and the image on the host stays small.
    fid = call(c, "OpenccsCreateFault", kind="disk-fill", clusterId=cluster, podName=name,
               duration=600)["faultId"]  # fmt: skip
    row = fault(c, fid)
    assert row["state"] == "active" and row["params"]["which"] == "layer", row
    assert row["params"]["fillBytes"] > (ROOT_GIB - 2) << 30
    code, out = write_mib(srv, iid, name, "/probe")
    assert code != 0 and "No space left on device" in out, out
    assert use_percent(srv, iid, name, "/") == 100
    assert sh(srv, iid, name, f"test -f /.openccs-fill-{fid}")[0] == 0  # in its layer
    assert image_kib(image) - before_kib < 64 * 1024  # metadata only, not 20 GiB
    assert call(c, "OpenccsEndFault", faultId=fid)["state"] == "ended"
    assert sh(srv, iid, name, f"test -e /.openccs-fill-{fid}")[0] != 0
    code, out = write_mib(srv, iid, name, "/probe")
    assert code == 0, out
    assert use_percent(srv, iid, name, "/") < 100

    # A volume, across a kill -9 of openccs: the fault still ends on time, its file goes.
    fid = call(c, "OpenccsCreateFault", kind="disk-fill", clusterId=cluster, podName=name,
               which="data", duration=15)["faultId"]  # fmt: skip
    code, out = write_mib(srv, iid, name, "/data/probe")
    assert code != 0 and "No space left on device" in out, out
    assert use_percent(srv, iid, name, "/data") == 100
    filler = root / "rootfs" / "data" / f".openccs-fill-{fid}"
    assert filler.is_file()
    ends = fault(c, fid)["endTime"]
    srv.kill9()
    until("the fault due while openccs is down", lambda: fmt_time(utcnow()) > ends, 30, every=0.5)
    srv.start()
    until("fault ended after the restart", lambda: fault(c, fid)["state"] == "ended", 30)
    assert not filler.exists()
    code, out = write_mib(srv, iid, name, "/data/probe")
    assert code == 0, out
    assert str(root) in mounts_of(srv) and len(loops_of(srv)) == 1  # adopted, not remade

    # Bad input changes nothing.
    count = call(c, "OpenccsDescribeFaults")["totalCount"]
    res = c.call("OpenccsCreateFault", {"kind": "disk-fill", "clusterId": cluster,
                                        "podName": name, "which": "nope"})  # fmt: skip
    assert res["code"] == 4000 and "which" in res["message"], res
    assert call(c, "OpenccsDescribeFaults")["totalCount"] == count
    call(c, "DeleteClusterService", clusterId=cluster, serviceName="writer")


def test_deleting_the_cluster_or_sweeping_leaves_no_disk_mount_or_loop_device(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    res = c.call("DeleteCluster", {"clusterId": cluster})
    assert res["code"] == 0, res
    assert srv.wait_task(res["data"]["requestId"], timeout=120)["status"] == "succ"
    assert mounts_of(srv) == []
    assert loops_of(srv) == []
    assert list((srv.data_dir / "machines").glob("*.ext4*")) == []
    # A server killed with its machine running: the sweep unmounts the disk and detaches
    # its loop device (the image is the machine's data: it stays, as its directory does).
    make_cluster(srv, machines=1, root_size=ROOT_GIB)
    assert len(loops_of(srv)) == 1
    srv.kill9()
    srv.sweep()
    assert loops_of(srv) == [] and mounts_of(srv) == []
    assert len(list((srv.data_dir / "machines").glob("*.ext4"))) == 1
