"""The local cloud's engines on the real host: VPC bridges, machines (netns + their own
dockerd), pod routes, destroy and sweep. Needs root, docker.io, iproute2, iptables and
busybox-static; every test run uses its own random site id, VPC CIDR and pod CIDRs, and
sweeps its site at the end, also when a test fails."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import shutil
import signal
import string
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from openccs.cloud import dockerapi, host, images, naming, procs, routes, safepath, sweep, vpc
from openccs.cloud.host import CloudError
from openccs.cloud.machine import CreateResult, MachineEngine, MachineSpec, mounts_under

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dockerd") is None,
    reason="needs root and dockerd (Debian package docker.io)",
)

IMAGE = "openccs/busybox:test"


def _random_site() -> str:
    return "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=3))


def _rid(prefix: str) -> str:
    return prefix + "-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def _free_octet(first: int, low: int, high: int) -> int:
    """A second octet whose /16 no host route or address uses yet."""
    taken = host.run(["ip", "-4", "route", "show", "table", "all"], quiet=True).stdout
    taken += host.run(["ip", "-4", "-o", "addr"], quiet=True).stdout
    taken += host.iptables("-t", "nat", "-S")  # other sites' VPC and cluster CIDRs
    for _ in range(200):
        octet = random.randint(low, high)
        if f" {first}.{octet}." not in " " + taken.replace("/", " "):
            return octet
    raise RuntimeError(f"no free {first}.x.0.0/16 between {low} and {high}")


@dataclass
class Site:
    site: str
    vpc_id: str
    vpc_cidr: str
    gateway: str
    prefix_len: int
    net: str  # "10.x" of the VPC
    pods: str  # "172.x" of the pod CIDRs
    work: Path
    engine: MachineEngine

    def spec(self, host_octet: int, pod_octet: int, **kw: object) -> MachineSpec:
        iid = _rid("ins")
        base = MachineSpec(
            instance_id=iid,
            site=self.site,
            vpc_id=self.vpc_id,
            lan_ip=f"{self.net}.1.{host_octet}",
            prefix_len=self.prefix_len,
            gateway=self.gateway,
            pod_cidr=f"{self.pods}.{pod_octet}.0/24",
            cpu=1.5,
            mem_mib=768,
            root_dir=self.work / iid,
        )
        return replace(base, **kw)  # type: ignore[arg-type]


def leftovers(site: str, dirs: list[Path], cidrs: list[str]) -> list[str]:
    """Everything of `site` still on the host (empty when it is clean)."""
    found = [f"netns {n}" for n in host.list_netns() if n.startswith(f"occ-{site}-")]
    found += [f"link {n}" for n in host.list_links() if naming.is_site_object(n, site)]
    for table in ("filter", "nat"):
        rules = host.iptables("-t", table, "-S").splitlines()
        found += [f"iptables {table}: {r}" for r in rules if f"OCC-{site}-" in r]
    shown = host.run(["ip", "-4", "route", "show", "table", "all"], quiet=True).stdout
    found += [f"route {ln}" for ln in shown.splitlines() if ln.split()[0] in cidrs]
    run_dir = naming.site_runtime_dir(site)
    needles = [str(run_dir) + "/", *(str(d) + "/" for d in dirs)]
    found += [
        f"process {pid} {' '.join(procs.cmdline(pid))[:100]}"
        for pid in procs.with_cmdline_containing(needles)
        if procs.alive(pid)
    ]
    found += [f"mount {m}" for m in mounts_under([run_dir, *dirs])]
    found += [f"dir {d}" for d in [run_dir, *dirs] if d.exists()]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/openccs-{site}")]
    return found


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    name = _random_site()
    second = _free_octet(10, 200, 250)
    vpc_id = _rid("vpc")
    work = Path(tempfile.mkdtemp(prefix=f"openccs-cloud-{name}-"))
    s = Site(
        site=name,
        vpc_id=vpc_id,
        vpc_cidr=f"10.{second}.0.0/16",
        gateway=f"10.{second}.1.1",
        prefix_len=24,
        net=f"10.{second}",
        pods=f"172.{_free_octet(172, 16, 31)}",
        work=work,
        engine=MachineEngine(name),
    )
    try:
        vpc.ensure_vpc(name, vpc_id, s.vpc_cidr)
        vpc.ensure_subnet(name, vpc_id, f"{s.gateway}/24")
        yield s
    finally:
        sweep.sweep(name, remove_data=True)
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Pair:
    a: MachineSpec
    b: MachineSpec
    results: dict[str, CreateResult]


WRITE_SCRIPT = """\
echo "userScript of $OPENCCS_INSTANCE_ID"
ip -4 -o addr show dev eth0
echo run >> runs.txt
echo written > marker.txt
test -e "$HOST_PATH" && echo host-visible || echo host-hidden
test -e /proc/1/root/etc/os-release && echo host-root || echo own-root
"""


@pytest.fixture(scope="module")
def pair(site: Site) -> Iterator[Pair]:
    a = site.spec(10, 1)
    # The script looks for the machine's own directory on the host, by its host path.
    script = f"HOST_PATH={a.root_dir / 'docker'}\n{WRITE_SCRIPT}"
    a.user_script = base64.b64encode(script.encode()).decode()
    failing = base64.b64encode(b"echo about to fail\nexit 3\n").decode()
    b = site.spec(11, 2, cpu=0.5, mem_mib=512, user_script=failing)
    results: dict[str, CreateResult] = {}
    errors: list[BaseException] = []

    def create(spec: MachineSpec) -> None:
        try:
            results[spec.instance_id] = site.engine.create(spec)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    try:
        threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        yield Pair(a, b, results)
    finally:
        for spec in (a, b):
            # What destroy cannot remove, the site's sweep does.
            with contextlib.suppress(CloudError):
                site.engine.destroy(spec.instance_id, spec.root_dir)


def _run_container(sock: Path, cmd: list[str], name: str) -> str:
    body = {"Image": IMAGE, "Cmd": cmd, "HostConfig": {}}
    created = dockerapi.request(sock, "POST", "/containers/create", params={"name": name},
                                json=body).json()  # fmt: skip
    dockerapi.request(sock, "POST", f"/containers/{created['Id']}/start")
    return str(created["Id"])


def _logs(sock: Path, cid: str) -> str:
    raw = dockerapi.request(
        sock, "GET", f"/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"}
    ).content
    # Without a TTY the stream is multiplexed: 8-byte headers (stream, size) before each frame.
    out, pos = b"", 0
    while pos + 8 <= len(raw):
        size = struct.unpack(">I", raw[pos + 4 : pos + 8])[0]
        out += raw[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return out.decode(errors="replace")


def _container_ip(sock: Path, cid: str) -> str:
    info = dockerapi.request(sock, "GET", f"/containers/{cid}/json").json()
    return str(info["NetworkSettings"]["IPAddress"])


def _dockerds_of(site: str, instance_id: str) -> list[int]:
    exec_root = str(naming.runtime_dir(site, instance_id) / "exec")
    return [
        p for p in procs.all_pids()
        if procs.cmdline(p)[:1] == ["dockerd"] and exec_root in procs.cmdline(p)
        and procs.alive(p)
    ]  # fmt: skip


def test_machines_get_their_own_network_and_dockerd(site: Site, pair: Pair) -> None:
    pids = set()
    for spec in (pair.a, pair.b):
        ok, reason = site.engine.health(spec.instance_id)
        assert ok, reason
        ns = naming.netns(site.site, spec.instance_id)
        addr = host.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
        assert f"{spec.lan_ip}/24" in addr
        default = host.run(["ip", "-n", ns, "route", "show", "default"]).stdout
        assert f"via {spec.gateway}" in default
        docker0 = host.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "docker0"]).stdout
        assert f"{spec.bip} " in docker0
        # The bridge port is on the VPC bridge.
        veth = naming.host_veth(site.site, spec.instance_id)
        assert host.run(["ip", "-o", "link", "show", "dev", veth]).stdout.count(
            f"master {naming.bridge(site.site, site.vpc_id)}"
        )
        pid = site.engine.dockerd_pid(spec.instance_id)
        assert pid is not None
        argv = procs.cmdline(pid)
        assert argv[argv.index("--data-root") + 1] == str(spec.root_dir / "docker")
        assert argv[argv.index("--cgroup-parent") + 1] == f"/openccs-{site.site}/{spec.instance_id}"
        # Its own containerd, under its own exec root.
        kids = [procs.cmdline(k) for k in procs.children(pid)]
        assert any(k and k[0] == "containerd" and str(naming.runtime_dir(site.site,
                   spec.instance_id)) in " ".join(k) for k in kids), kids  # fmt: skip
        pids.add(pid)
    assert len(pids) == 2


def test_cgroup_limits_are_the_instance_types(site: Site, pair: Pair) -> None:
    for spec in (pair.a, pair.b):
        cg = Path("/sys/fs/cgroup")
        rel = f"openccs-{site.site}/{spec.instance_id}"
        assert (cg / "cpu" / rel / "cpu.cfs_period_us").read_text().strip() == "100000"
        quota = (cg / "cpu" / rel / "cpu.cfs_quota_us").read_text().strip()
        assert quota == str(round(spec.cpu * 100000))
        limit = (cg / "memory" / rel / "memory.limit_in_bytes").read_text().strip()
        assert limit == str(spec.mem_mib * 1024 * 1024)
        # The machine's daemons run inside its limits.
        pid = site.engine.dockerd_pid(spec.instance_id)
        assert f"{rel}/system" in Path(f"/proc/{pid}/cgroup").read_text()


def test_user_script_runs_in_the_machine_and_failures_are_reported(site: Site, pair: Pair) -> None:
    ok_run = pair.results[pair.a.instance_id].user_script
    assert ok_run is not None and ok_run.ok, ok_run
    assert (pair.a.root_dir / "rootfs" / "marker.txt").read_text() == "written\n"
    output = (pair.a.root_dir / "userscript.log").read_text()
    assert f"userScript of {pair.a.instance_id}" in output
    assert f"{pair.a.lan_ip}/24" in output  # it ran in the machine's network namespace
    # ...as the machine's root, not the host's: the host's files are out of its reach.
    assert "host-hidden" in output and "own-root" in output, output
    failed = pair.results[pair.b.instance_id].user_script
    assert failed is not None and not failed.ok
    assert failed.exit_code == 3
    assert "exited with code 3" in failed.reason and "about to fail" in failed.reason


def test_pods_answer_other_machines_and_the_host(site: Site, pair: Pair) -> None:
    sock_a = site.engine.docker_socket(pair.a.instance_id)
    sock_b = site.engine.docker_socket(pair.b.instance_id)
    for sock in (sock_a, sock_b):
        images.import_busybox_image(sock, IMAGE)
    web = _run_container(
        sock_a, ["sh", "-c", "echo hello-from-pod > /var/www/index.html; "
                 "exec httpd -f -p 80 -h /var/www"], "web")  # fmt: skip
    pod_ip = _container_ip(sock_a, web)
    assert pod_ip.startswith(f"{site.pods}.1.")

    table = {pair.a.pod_cidr: pair.a.lan_ip, pair.b.pod_cidr: pair.b.lan_ip}
    cluster = _rid("cls")
    try:
        routes.sync_pod_routes(site.site, cluster, table, [pair.a, pair.b])
        routes.sync_pod_routes(site.site, cluster, table, [pair.a, pair.b])  # idempotent
        routes.ensure_cluster_masquerade(site.site, cluster, site.vpc_id, f"{site.pods}.0.0/16")

        ns_b = naming.netns(site.site, pair.b.instance_id)
        in_b = host.run(["ip", "-n", ns_b, "route", "show", "proto", "233"]).stdout
        assert f"{pair.a.pod_cidr} via {pair.a.lan_ip}" in in_b
        assert pair.b.pod_cidr not in in_b  # not its own

        deadline = time.monotonic() + 10
        while True:  # httpd may take a moment to listen
            try:
                answer = httpx.get(f"http://{pod_ip}/", timeout=2).text
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert answer == "hello-from-pod\n"

        client = _run_container(
            # Not wget's own -T: Debian's static busybox 1.35 wget segfaults with it.
            sock_b,
            ["timeout", "5", "wget", "-q", "-O", "-", f"http://{pod_ip}/"],
            "client",
        )
        status = dockerapi.request(sock_b, "POST", f"/containers/{client}/wait").json()
        assert status["StatusCode"] == 0, _logs(sock_b, client)
        assert _logs(sock_b, client) == "hello-from-pod\n"

        # A route that leaves the table leaves the host and the machines.
        routes.sync_pod_routes(site.site, cluster, {pair.a.pod_cidr: pair.a.lan_ip},
                               [pair.a, pair.b])  # fmt: skip
        on_host = host.run(["ip", "route", "show", "proto", "233"]).stdout
        assert pair.b.pod_cidr not in on_host and pair.a.pod_cidr in on_host
        ns_a = naming.netns(site.site, pair.a.instance_id)
        assert host.run(["ip", "-n", ns_a, "route", "show", "proto", "233"]).stdout == ""
    finally:
        routes.delete_cluster_routes(site.site, cluster, [pair.a, pair.b])
    assert pair.a.pod_cidr not in host.run(["ip", "route", "show"]).stdout
    nat = host.iptables("-t", "nat", "-S")
    assert cluster not in nat


def test_create_twice_and_a_restarted_openccs_adopt_the_running_dockerd(
    site: Site, pair: Pair
) -> None:
    pidfile = naming.runtime_dir(site.site, pair.a.instance_id) / "docker.pid"
    before = int(pidfile.read_text())
    again = site.engine.create(pair.a)
    assert again.started is False and again.pid == before
    assert int(pidfile.read_text()) == before
    assert _dockerds_of(site.site, pair.a.instance_id) == [before]
    # The userScript ran once: on the machine's first boot.
    assert (pair.a.root_dir / "rootfs" / "runs.txt").read_text() == "run\n"

    restarted = MachineEngine(site.site)  # what a restarted openccs builds
    assert restarted.find_running() == {pair.a.instance_id, pair.b.instance_id}
    assert restarted.create(pair.b).started is False
    assert _dockerds_of(site.site, pair.b.instance_id) == [
        site.engine.dockerd_pid(pair.b.instance_id)
    ]

    # A machine asked for with another pod CIDR gets its dockerd restarted with it.
    old = site.engine.dockerd_pid(pair.b.instance_id)
    moved = site.engine.create(replace(pair.b, pod_cidr=f"{site.pods}.3.0/24"))
    assert moved.started and moved.pid != old
    assert _dockerds_of(site.site, pair.b.instance_id) == [moved.pid]
    ns = naming.netns(site.site, pair.b.instance_id)
    docker0 = host.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "docker0"]).stdout
    assert f"{site.pods}.3.1/24" in docker0


def test_a_dockerd_that_stops_answering_is_a_failed_machine(site: Site, pair: Pair) -> None:
    pid = site.engine.dockerd_pid(pair.a.instance_id)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        ok, reason = site.engine.health(pair.a.instance_id, timeout=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert not ok
    assert "does not answer" in reason and str(pid) in reason
    assert site.engine.health(pair.a.instance_id) == (True, "ok")


def test_a_killed_dockerd_is_a_failed_machine_until_started_again(site: Site, pair: Pair) -> None:
    pid = site.engine.dockerd_pid(pair.b.instance_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    ok, reason = site.engine.health(pair.b.instance_id)
    assert not ok
    assert "not running" in reason and pair.b.instance_id in reason
    assert pair.b.instance_id not in site.engine.find_running()

    new_pid = site.engine.start(pair.b)
    assert new_pid != pid
    ok, reason = site.engine.health(pair.b.instance_id)
    assert ok, reason
    ns = naming.netns(site.site, pair.b.instance_id)
    assert host.rule_exists("filter", "DOCKER-USER", ["-o", "docker0", "-j", "ACCEPT"], netns=ns)

    site.engine.stop(pair.b.instance_id)
    assert not site.engine.health(pair.b.instance_id)[0]
    assert _dockerds_of(site.site, pair.b.instance_id) == []


def test_destroy_and_delete_vpc_leave_nothing(site: Site, pair: Pair) -> None:
    for spec in (pair.a, pair.b):
        # A pod's volume as the node agent stages it: it goes with the machine.
        binds = site.engine.runtime_dir(spec.instance_id) / "binds"
        safepath.stage(spec.root_dir / "rootfs", "/vol", binds, "pod/v")
        assert mounts_under([binds]) != []
        site.engine.destroy(spec.instance_id, spec.root_dir)
        assert mounts_under([binds]) == []
        site.engine.destroy(spec.instance_id, spec.root_dir)  # idempotent
    vpc.delete_subnet(site.site, site.vpc_id, f"{site.gateway}/24")
    vpc.delete_vpc(site.site, site.vpc_id)
    vpc.delete_vpc(site.site, site.vpc_id)  # idempotent
    dirs = [pair.a.root_dir, pair.b.root_dir]
    assert leftovers(site.site, dirs, [pair.a.pod_cidr, pair.b.pod_cidr]) == []


def test_sweep_removes_what_a_crashed_run_left() -> None:
    name = _random_site()
    assert all(v == [] for v in sweep.sweep(name).values())  # nothing there: a no-op
    second = _free_octet(10, 200, 250)
    work = Path(tempfile.mkdtemp(prefix=f"openccs-cloud-{name}-"))
    engine = MachineEngine(name)
    vpc_id = _rid("vpc")
    s = Site(name, vpc_id, f"10.{second}.0.0/16", f"10.{second}.1.1", 24, f"10.{second}",
             f"172.{_free_octet(172, 16, 31)}", work, engine)  # fmt: skip
    spec = s.spec(20, 5)
    try:
        vpc.ensure_vpc(name, vpc_id, s.vpc_cidr)
        vpc.ensure_subnet(name, vpc_id, f"{s.gateway}/24")
        engine.create(spec)
        sock = engine.docker_socket(spec.instance_id)
        images.import_busybox_image(sock, IMAGE)
        _run_container(sock, ["sleep", "600"], "sleeper")  # leaves mounts and a shim
        routes.sync_pod_routes(name, "cls-sweep001", {spec.pod_cidr: spec.lan_ip}, [spec])
        assert mounts_under([spec.root_dir]) != []
        del engine  # the crash: only the host remembers
        removed = sweep.sweep(name, remove_data=True)
        assert removed["processes"] and removed["netns"] and removed["chains"]
        assert leftovers(name, [spec.root_dir], [spec.pod_cidr]) == []
    finally:
        sweep.sweep(name, remove_data=True)
        shutil.rmtree(work, ignore_errors=True)


def test_host_errors_say_what_failed() -> None:
    with pytest.raises(CloudError) as info:
        vpc.ensure_subnet(_random_site(), _rid("vpc"), "10.254.1.1/24")
    assert "ensure_vpc" in info.value.message
    with pytest.raises(CloudError) as info2:
        host.run(["ip", "link", "del", "dev", "occ-no-such0"])
    assert "ip link del dev occ-no-such0 failed" in info2.value.message
    assert "exit" in info2.value.message


def test_names_fit_the_kernel_limits_and_belong_to_one_site() -> None:
    ins, vpc_id = "ins-abcd1234", "vpc-wxyz9876"
    assert naming.host_veth("s1te", ins) == "ovs1teabcd1234"
    assert naming.bridge("s1te", vpc_id) == "obs1tewxyz9876"
    assert naming.netns("s1te", ins) == "occ-s1te-abcd1234"
    names = [
        naming.host_veth("s1te", ins),
        naming.bridge("s1te", vpc_id),
        naming.netns("s1te", ins),
        naming.forward_chain("s1te"),
    ]
    assert all(len(n) <= 15 for n in names[:2])  # interface names
    for name in names:
        assert naming.is_site_object(name, "s1te")
        assert naming.is_site_object(name, None)
        assert not naming.is_site_object(name, "0the")
    assert not naming.is_site_object("eth0", None) and not naming.is_site_object("docker0", None)
    with pytest.raises(ValueError):
        naming.netns("TOOLONG", ins)
