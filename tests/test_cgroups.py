"""The cgroup drivers and the sampler's readers against file trees laid out as the kernel
lays out cgroup v1 and v2 (file names and formats from the kernel's cgroup-v1 and
cgroup-v2 documentation): limits written, controllers enabled, missing controllers
reported, counters read the same way on both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openccs.cli import doctor
from openccs.cloud import cgroups
from openccs.cloud.machine import parse_docker_version, version_flags
from openccs.monitor import collect

MACHINE = "/openccs-ab12/ins-x1y2z3w4"
SYSTEM = MACHINE + "/system"
CID = "0123456789ab" + "c" * 52

V2_FILES = {  # what a non-root cgroup shows with cpu, memory and io enabled by its parent
    "cgroup.procs": "",
    "cgroup.controllers": "cpu io memory pids",
    "cgroup.subtree_control": "",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
    "cpu.max": "max 100000\n",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.current": "0\n",
    "memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
    "io.stat": "",
}


def v2_tree(root: Path, controllers: str = "cpu io memory pids") -> Path:
    """A v2 root and the machine's cgroup, as the kernel shows them once the parents enable
    `controllers` (a controller's files exist only then)."""
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("\n")
    (root / "cgroup.procs").write_text("1\n")
    have = controllers.split()
    for cg in ("/openccs-ab12", MACHINE, SYSTEM, f"{MACHINE}/{CID}"):
        d = root / cg.lstrip("/")
        d.mkdir(parents=True)
        for name, text in V2_FILES.items():
            prefix = name.split(".")[0]
            if (prefix in ("cgroup", "cpu") and name != "cpu.max") or prefix in have:
                (d / name).write_text(text)
        (d / "cgroup.controllers").write_text(controllers + "\n")
    return root


def v1_tree(root: Path, controllers: tuple[str, ...]) -> Path:
    for c in controllers:
        (root / c).mkdir(parents=True)
        (root / c / "cgroup.procs").write_text("1\n")
    return root


# -- choosing the driver -----------------------------------------------------------------

MOUNTS_V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""
MOUNTS_HYBRID = MOUNTS_V1 + "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
MOUNTS_V2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_the_driver_follows_the_file_system_at_the_root() -> None:
    root = Path("/sys/fs/cgroup")
    assert isinstance(cgroups.detect(root, MOUNTS_V2), cgroups.V2)
    assert isinstance(cgroups.detect(root, MOUNTS_V1), cgroups.V1)
    assert isinstance(cgroups.detect(root, MOUNTS_HYBRID), cgroups.V1)  # hybrid counts as v1
    unified = root / "unified"
    assert isinstance(cgroups.detect(unified, MOUNTS_HYBRID), cgroups.V2)
    assert cgroups.cgroup2_mounts(MOUNTS_HYBRID) == [unified]
    # A later mount over the same point wins.
    assert cgroups.fs_type(root, MOUNTS_V1 + MOUNTS_V2.replace("29 23", "50 31")) == "cgroup2"


# -- v2 ------------------------------------------------------------------------------------


def test_v2_writes_the_instance_types_limits(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path))
    assert tree.missing() == []
    assert tree.ensure_machine(MACHINE, SYSTEM, 1.5, 768) == []
    machine = tmp_path / MACHINE.lstrip("/")
    assert (machine / "cpu.max").read_text() == "150000 100000"
    assert (machine / "memory.max").read_text() == str(768 * 1024 * 1024)
    assert (machine / "memory.swap.max").read_text() == "0"
    # The root and the site enable the controllers for their children, the ones they have.
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +io +pids"
    site = tmp_path / "openccs-ab12"
    assert (site / "cgroup.subtree_control").read_text() == "+cpu +memory +io +pids"
    assert tree.procs_files(SYSTEM) == [machine / "system" / "cgroup.procs"]


def test_v2_without_swap_accounting_still_limits_memory(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path))
    machine = tmp_path / MACHINE.lstrip("/")
    (machine / "memory.swap.max").unlink()
    assert tree.ensure_machine(MACHINE, SYSTEM, 0.5, 512) == []
    assert (machine / "memory.max").read_text() == str(512 * 1024 * 1024)
    assert not (machine / "memory.swap.max").exists()


def test_v2_without_the_memory_controller_runs_and_says_so(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path, controllers="cpu io pids"))
    assert tree.missing() == ["memory"]
    assert tree.ensure_machine(MACHINE, SYSTEM, 2, 2048) == ["memory"]
    machine = tmp_path / MACHINE.lstrip("/")
    assert (machine / "cpu.max").read_text() == "200000 100000"
    assert not (machine / "memory.max").exists()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +io +pids"
    checks = {c.name: c for c in doctor.check_cgroups(tree)}
    assert checks["cgroup controller memory"].status == doctor.NOTE
    assert "not enforced" in checks["cgroup controller memory"].detail
    assert checks["cgroup controller cpu"].status == doctor.OK


def test_v2_with_no_controller_at_all(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path, controllers="hugetlb"))
    assert tree.missing() == ["cpu", "memory"]
    assert tree.ensure_machine(MACHINE, SYSTEM, 1, 1024) == ["cpu", "memory"]
    assert (tmp_path / "cgroup.subtree_control").read_text() == "\n"  # nothing to enable


def test_v2_in_a_container_that_delegates_nothing(tmp_path: Path) -> None:
    # The container's cgroup is the root here: a child cgroup (it has cgroup.type) holding
    # processes, so it cannot enable controllers for its children.
    tree = cgroups.V2(v2_tree(tmp_path, controllers="cpu memory pids"))
    (tmp_path / "cgroup.type").write_text("domain\n")
    assert tree.missing() == ["cpu", "memory"]
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")  # delegated with cpu enabled
    assert tree.missing() == ["memory"]


def test_v2_daemons_enter_the_cgroup_and_see_the_tree_as_sys_fs_cgroup(tmp_path: Path) -> None:
    private = cgroups.V2(tmp_path)
    argv = private.daemon_argv(SYSTEM, ["dockerd", "--debug"])
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert f"mount --bind {tmp_path} /sys/fs/cgroup" in argv[6]
    assert f"echo $$ > {tmp_path}{SYSTEM}/cgroup.procs" in argv[6]
    assert argv[-2:] == ["dockerd", "--debug"]
    host = cgroups.V2(Path("/sys/fs/cgroup"))
    argv = host.daemon_argv(SYSTEM, ["dockerd"])
    assert argv[0] == "sh" and "unshare" not in argv and "mount" not in argv[2]


def test_v2_finds_the_processes_below_a_cgroup(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path))
    (tmp_path / SYSTEM.lstrip("/") / "cgroup.procs").write_text("10\n11\n")
    (tmp_path / MACHINE.lstrip("/") / CID / "cgroup.procs").write_text("12\n")
    assert tree.pids_in(MACHINE) == {10, 11, 12}
    assert tree.children("openccs-") == ["/openccs-ab12"]


# -- v1 ------------------------------------------------------------------------------------


def test_v1_writes_the_instance_types_limits(tmp_path: Path) -> None:
    tree = cgroups.V1(v1_tree(tmp_path, ("cpu", "cpuacct", "memory", "pids", "blkio")))
    assert tree.missing() == []
    assert tree.ensure_machine(MACHINE, SYSTEM, 1.5, 768) == []
    rel = MACHINE.lstrip("/")
    assert (tmp_path / "cpu" / rel / "cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "cpu" / rel / "cpu.cfs_quota_us").read_text() == "150000"
    assert (tmp_path / "memory" / rel / "memory.limit_in_bytes").read_text() == str(768 * 2**20)
    controllers = [p.relative_to(tmp_path).parts[0] for p in tree.procs_files(SYSTEM)]
    assert controllers == ["cpu", "cpuacct", "memory", "pids"]


def test_v1_without_a_memory_hierarchy_runs_and_says_so(tmp_path: Path) -> None:
    tree = cgroups.V1(v1_tree(tmp_path, ("cpu", "cpuacct", "pids")))
    assert tree.missing() == ["memory"]
    assert tree.ensure_machine(MACHINE, SYSTEM, 1, 1024) == ["memory"]
    assert not (tmp_path / "memory").exists()
    controllers = [p.relative_to(tmp_path).parts[0] for p in tree.procs_files(SYSTEM)]
    assert controllers == ["cpu", "cpuacct", "pids"]


# -- the sampler's readers on both ---------------------------------------------------------


def test_readers_give_the_same_figures_on_v1_and_v2(tmp_path: Path) -> None:
    cg = f"{MACHINE}/{CID}"
    v2 = cgroups.V2(v2_tree(tmp_path / "v2"))
    d = tmp_path / "v2" / cg.lstrip("/")
    (d / "cpu.stat").write_text("usage_usec 2040469\nuser_usec 2024537\nsystem_usec 15932\n")
    (d / "memory.current").write_text("10485760\n")
    (d / "memory.stat").write_text("anon 6291456\nfile 4194304\nactive_file 0\n"
                                   "inactive_file 4194304\n")  # fmt: skip
    (d / "io.stat").write_text(
        "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"
        "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n"
    )
    (d / "cgroup.procs").write_text("4242\n")
    v1 = cgroups.V1(v1_tree(tmp_path / "v1", ("cpuacct", "memory", "blkio", "pids")))
    rel = cg.lstrip("/")
    for c in ("cpuacct", "memory", "blkio", "pids"):
        (tmp_path / "v1" / c / rel).mkdir(parents=True)
    (tmp_path / "v1" / "cpuacct" / rel / "cpuacct.usage").write_text("2040469000\n")
    (tmp_path / "v1" / "memory" / rel / "memory.usage_in_bytes").write_text("10485760\n")
    (tmp_path / "v1" / "memory" / rel / "memory.stat").write_text(
        "cache 4194304\ninactive_file 4194304\ntotal_inactive_file 4194304\n"
    )
    blk = tmp_path / "v1" / "blkio" / rel
    (blk / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:16 Read 1459200\n8:16 Write 314773504\n8:0 Read 90430464\n8:0 Write 299008000\n"
        "Total 705671168\n"
    )
    (blk / "blkio.throttle.io_serviced_recursive").write_text(
        "8:16 Read 192\n8:16 Write 353\n8:0 Read 8950\n8:0 Write 1252\nTotal 10747\n"
    )
    (tmp_path / "v1" / "pids" / rel / "cgroup.procs").write_text("4242\n")
    figures = []
    for tree in (v1, v2):
        with cgroups.override(tree):
            figures.append(
                (collect.cpu_ns(cg), collect.memory_working_set(cg), collect.blkio(cg),
                 collect.first_pid(cg))
            )  # fmt: skip
    working_set = 10485760 - 4194304  # usage less inactive_file, as kubelet counts it
    disk = (1459200 + 90430464, 314773504 + 299008000, 192 + 8950, 353 + 1252)
    assert figures[0] == figures[1] == (2040469000, working_set, disk, 4242)


def test_v2_without_memory_or_io_reads_no_figure_rather_than_zero(tmp_path: Path) -> None:
    tree = cgroups.V2(v2_tree(tmp_path, controllers="pids"))
    cg = f"{MACHINE}/{CID}"
    with cgroups.override(tree):
        assert collect.cpu_ns(cg) == 0  # cpu.stat is there without the cpu controller
        assert collect.memory_working_set(cg) is None
        assert collect.blkio(cg) is None


# -- Docker Engine versions and the doctor's parsers -----------------------------------------


def test_docker_versions_and_their_flags() -> None:
    assert parse_docker_version("Docker version 20.10.24+dfsg1, build 5d6db84") == (20, 10)
    assert parse_docker_version("Docker version 28.2.2, build e6534b4") == (28, 2)
    assert version_flags((20, 10)) == []
    assert version_flags((26, 1)) == []
    assert version_flags((28, 2)) == ["--allow-direct-routing"]


@pytest.mark.parametrize(
    ("text", "flavour"),
    [("iptables v1.8.9 (nf_tables)", "nf_tables"), ("iptables v1.8.7 (legacy)", "legacy"),
     ("iptables v1.6.1", "legacy")],
)  # fmt: skip
def test_iptables_flavour(text: str, flavour: str) -> None:
    assert doctor.iptables_flavour(text) == flavour


def test_rules_are_counted_in_a_save_dump() -> None:
    dump = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n"
    assert doctor.count_rules(dump) == 1


def test_doctor_fails_where_no_cgroup_can_be_made(tmp_path: Path) -> None:
    (check,) = doctor.check_cgroups(cgroups.V2(tmp_path / "not-mounted"))
    assert check.status == doctor.PROBLEM and "no cgroup hierarchy" in check.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_doctor_makes_and_removes_a_netns_veth_and_bridge() -> None:
    before = set(os.listdir("/sys/class/net")), set(os.listdir("/run/netns"))
    checks = doctor.check_network()
    assert [(c.name, c.status) for c in checks] == [
        ("network namespace", doctor.OK), ("bridge", doctor.OK), ("veth", doctor.OK),
        ("veth on bridge", doctor.OK)]  # fmt: skip
    after = set(os.listdir("/sys/class/net")), set(os.listdir("/run/netns"))
    assert not {n for n in after[0] - before[0] if n.startswith(("odv", "odb"))}
    assert not {n for n in after[1] - before[1] if n.startswith("occdoctor-")}


def test_a_frozen_machine_is_thawed_before_it_is_stopped(tmp_path: Path) -> None:
    """A fault's freeze left behind (openccs killed) must not keep a machine from stopping:
    frozen processes can be neither stopped nor killed."""
    v1 = cgroups.V1(v1_tree(tmp_path / "v1", ("cpu", "freezer")))
    state = tmp_path / "v1" / "freezer" / MACHINE.lstrip("/") / "freezer.state"
    state.parent.mkdir(parents=True)
    state.write_text("FROZEN\n")
    v1.thaw(MACHINE)
    assert state.read_text() == "THAWED"
    v1.thaw("/openccs-ab12/ins-nofreeze")  # no freezer cgroup: nothing to do
    v2 = cgroups.V2(v2_tree(tmp_path / "v2"))
    freeze = tmp_path / "v2" / MACHINE.lstrip("/") / "cgroup.freeze"
    freeze.write_text("1\n")
    v2.thaw(MACHINE)
    assert freeze.read_text() == "0"
