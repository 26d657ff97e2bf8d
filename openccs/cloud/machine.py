"""Machines (CVMs) of the local cloud: a network namespace on a VPC bridge with its own
dockerd, inside a cgroup holding the instance type's CPU and memory limits.

Public interface:

* `MachineSpec` — what a machine is (ids, addresses, pod CIDR, size, directories, userScript).
* `MachineEngine(site, runtime_base=Path("/run/openccs"))`:
  * `create(spec) -> CreateResult` — idempotent: netns, veth on the VPC bridge, `lan_ip`,
    default route via the gateway (ICMP redirects ignored), cgroup limits, dockerd
    (started only when not running; restarted when it runs with other settings, e.g. a new
    pod CIDR),
    the DOCKER-USER rule letting other machines and the host reach pods, then the userScript
    (once per machine; its result is in `CreateResult.user_script`).
  * `start(spec) -> int` / `stop(instance_id)` — boot / shut down (containers stop with it).
  * `health(instance_id) -> (ok, reason)` — dockerd alive and answering `/_ping`.
  * `destroy(instance_id, root_dir)` — idempotent: containers, daemons, mounts, netns, veth,
    host routes through the machine, cgroups, runtime dir and `root_dir`.
  * `docker_socket(instance_id) -> Path`, `find_running() -> set[str]`,
    `dockerd_pid(instance_id) -> int | None`, `kernel_version() -> str`.

A machine's `root_dir` holds `docker/` (data root), `rootfs/` (its disk: the userScript's
working directory and HOME), `daemon.json`, `dockerd.log`, and `userscript.sh`, `.log` and
`.exit` (the exit code; its presence means the userScript does not run again).

The dockerds are started detached (own session, output to `root_dir/dockerd.log`), so they
outlive the openccs process; a new `MachineEngine` finds them again by their command lines
and never starts a second dockerd for a machine. Sockets, pidfile and exec root live in the
short runtime dir `<runtime_base>/<site>/<ins-id>/` (unix socket paths must stay < 108 bytes).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from openccs.cloud import cgroups, dockerapi, host, images, naming, procs
from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.machine")

DOCKERD = "dockerd"
READY_TIMEOUT = 30.0
USER_SCRIPT_TIMEOUT = 600.0
# The userScript runs in this image (built offline into every machine), the disk at /disk.
USER_SCRIPT_IMAGE = "openccs/busybox:latest"
USER_SCRIPT_DISK = "/disk"
# Seconds dockerd gives containers to stop on a machine shutdown before killing them.
SHUTDOWN_TIMEOUT = 5
# Where the control plane knocks to know a machine's VPC address answers (kubelet's port: a
# refusal is an answer as good as an accept; silence means the machine is cut off or down).
REACH_PORT = 10250
REACH_TIMEOUT = 1.0
REACH_TRIES = 2


@dataclass
class MachineSpec:
    instance_id: str  # ins-xxxxxxxx
    site: str
    vpc_id: str
    lan_ip: str
    prefix_len: int
    gateway: str
    pod_cidr: str  # e.g. "172.30.1.0/24"; docker0 gets its first host address
    cpu: float  # cores
    mem_mib: int
    root_dir: Path  # the machine's own directory: docker data, logs, userScript, rootfs/
    user_script: str | None = None  # base64, as the API receives it
    # The size of a disk of its own (GiB): an ext4 file system on a sparse image mounted at
    # root_dir. 0: root_dir is a plain directory of the host (its disk is the host's).
    disk_gib: int = 0

    @property
    def bip(self) -> str:
        net = ipaddress.ip_network(self.pod_cidr)
        return f"{net.network_address + 1}/{net.prefixlen}"


@dataclass
class UserScriptResult:
    exit_code: int
    log_path: Path
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def reason(self) -> str:
        return f"userScript exited with code {self.exit_code}: {self.output_tail.strip()[-300:]}"


@dataclass
class CreateResult:
    instance_id: str
    pid: int  # dockerd's
    started: bool  # False when a running dockerd was found and adopted
    ms: float
    user_script: UserScriptResult | None


def kernel_version() -> str:
    return host.kernel_version()


class MachineEngine:
    def __init__(self, site: str, runtime_base: Path = naming.DEFAULT_RUNTIME_BASE) -> None:
        self.site = naming.check_site(site)
        self.runtime_base = Path(runtime_base)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # The dockerds this process started, kept so that Python does not warn about them
        # still running when the Popen object is collected; they are reaped in procs.alive.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- names and paths ---------------------------------------------------------------
    def runtime_dir(self, instance_id: str) -> Path:
        return naming.runtime_dir(self.site, instance_id, self.runtime_base)

    def docker_socket(self, instance_id: str) -> Path:
        return self.runtime_dir(instance_id) / "docker.sock"

    def _pidfile(self, instance_id: str) -> Path:
        return self.runtime_dir(instance_id) / "docker.pid"

    def _exec_root(self, instance_id: str) -> Path:
        return self.runtime_dir(instance_id) / "exec"

    def _netns(self, instance_id: str) -> str:
        return naming.netns(self.site, instance_id)

    def _lock(self, instance_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(instance_id, threading.Lock())

    def kernel_version(self) -> str:
        return kernel_version()

    # -- finding dockerds ----------------------------------------------------------------
    def _is_our_dockerd(self, pid: int, instance_id: str) -> bool:
        argv = procs.cmdline(pid)
        return (
            bool(argv)
            and os.path.basename(argv[0]) == DOCKERD
            and _flag(argv, "--exec-root") == str(self._exec_root(instance_id))
        )

    def _scan_dockerds(self) -> dict[str, int]:
        """instance id -> pid of every live dockerd of this site, from command lines."""
        site_dir = str(naming.site_runtime_dir(self.site, self.runtime_base)) + "/"
        found: dict[str, int] = {}
        for pid in procs.all_pids():
            argv = procs.cmdline(pid)
            if not argv or os.path.basename(argv[0]) != DOCKERD:
                continue
            exec_root = _flag(argv, "--exec-root") or ""
            if exec_root.startswith(site_dir) and procs.alive(pid):
                found[exec_root[len(site_dir) :].split("/")[0]] = pid
        return found

    def dockerd_pid(self, instance_id: str) -> int | None:
        """The pid of the machine's live dockerd: its pidfile's, checked to be alive and to be
        this machine's dockerd (pids get reused), else found by command line."""
        try:
            pid = int(self._pidfile(instance_id).read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and procs.alive(pid) and self._is_our_dockerd(pid, instance_id):
            return pid
        # A dockerd that has not written its pidfile yet is still this machine's dockerd.
        return self._scan_dockerds().get(instance_id)

    def find_running(self) -> set[str]:
        """Instance ids of this site whose dockerd is alive (to adopt after a restart)."""
        return set(self._scan_dockerds())

    # -- create / start ------------------------------------------------------------------
    def create(self, spec: MachineSpec) -> CreateResult:
        if spec.site != self.site:
            raise CloudError(f"machine {spec.instance_id} is of site {spec.site}, not {self.site}")
        started_at = time.monotonic()
        pid, started = self._boot(spec)
        script = self._run_user_script(spec) if spec.user_script else None
        ms = round((time.monotonic() - started_at) * 1000, 1)
        log_event(log, "machine created", instance=spec.instance_id, site=self.site,
                  lan_ip=spec.lan_ip, pod_cidr=spec.pod_cidr, dockerd=pid, adopted=not started,
                  user_script=None if script is None else script.exit_code, ms=ms)  # fmt: skip
        return CreateResult(spec.instance_id, pid, started, ms, script)

    def start(self, spec: MachineSpec) -> int:
        """Boot a stopped machine (its network and cgroup are ensured too); dockerd's pid."""
        return self._boot(spec)[0]

    def _boot(self, spec: MachineSpec) -> tuple[int, bool]:
        with self._lock(spec.instance_id):
            self._ensure_dirs(spec)
            self._ensure_network(spec)
            unset = cgroups.driver().ensure_machine(
                naming.cgroup(self.site, spec.instance_id),
                naming.cgroup_system(self.site, spec.instance_id),
                spec.cpu,
                spec.mem_mib,
            )
            if unset:
                log_event(log, "machine limits not enforced", instance=spec.instance_id,
                          controllers=",".join(unset))  # fmt: skip
            return self._ensure_dockerd(spec)

    def _ensure_dirs(self, spec: MachineSpec) -> None:
        run_dir = self.runtime_dir(spec.instance_id)
        ensure_disk(spec.root_dir, spec.disk_gib)
        for d in (spec.root_dir, spec.root_dir / "rootfs", spec.root_dir / "docker", run_dir):
            d.mkdir(parents=True, exist_ok=True)
        record = {**asdict(spec), "root_dir": str(spec.root_dir), "user_script": None}
        # What destroy and sweep need to know about the machine once the caller is gone.
        (run_dir / "machine.json").write_text(json.dumps(record, indent=1))
        daemon_json = spec.root_dir / "daemon.json"
        if not daemon_json.exists():
            # An empty config of its own, so /etc/docker/daemon.json cannot change the machine.
            daemon_json.write_text("{}\n")

    def _ensure_network(self, spec: MachineSpec) -> None:
        ns = self._netns(spec.instance_id)
        veth = naming.host_veth(self.site, spec.instance_id)
        bridge = naming.bridge(self.site, spec.vpc_id)
        if not host.link_exists(bridge):
            raise CloudError(f"VPC {spec.vpc_id} has no bridge {bridge}: call ensure_vpc first")
        if not host.netns_exists(ns):
            host.run(["ip", "netns", "add", ns])
        if not host.link_exists(veth):
            # The peer is created directly inside the namespace as eth0: no host-side
            # leftover with a temporary name if we crash here.
            host.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                      "netns", ns])  # fmt: skip
        host.run(["ip", "link", "set", "dev", veth, "master", bridge, "up"])
        lan = f"{spec.lan_ip}/{spec.prefix_len}"
        shown = host.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"], quiet=True)
        for line in shown.stdout.splitlines():
            words = line.split()
            old = words[words.index("inet") + 1] if "inet" in words else lan
            if old != lan:  # the machine's address changed: one lanIp per machine
                host.run(["ip", "-n", ns, "addr", "del", old, "dev", "eth0"])
        host.run(["ip", "-n", ns, "addr", "replace", lan, "dev", "eth0"])
        host.run(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
        host.run(["ip", "-n", ns, "link", "set", "dev", "eth0", "up"])
        host.run(["ip", "-n", ns, "route", "replace", "default", "via", spec.gateway])
        # The host answers traffic for another subnet of the VPC with ICMP redirects (it
        # forwards it back out of the same bridge); taking them would send it straight over
        # the bridge, which a VPC router between subnets and zones does not allow.
        host.run(host.in_netns(ns, ["sysctl", "-q", "-w", "net.ipv4.conf.all.accept_redirects=0",
                                    "net.ipv4.conf.eth0.accept_redirects=0"]))  # fmt: skip

    def _dockerd_argv(self, spec: MachineSpec) -> list[str]:
        run_dir = self.runtime_dir(spec.instance_id)
        ns = self._netns(spec.instance_id)
        return [
            DOCKERD,
            "--config-file", str(spec.root_dir / "daemon.json"),
            "--data-root", str(spec.root_dir / "docker"),
            "--exec-root", str(self._exec_root(spec.instance_id)),
            "--pidfile", str(run_dir / "docker.pid"),
            "-H", f"unix://{run_dir / 'docker.sock'}",
            "--containerd-namespace", ns,
            "--containerd-plugins-namespace", f"{ns}-plugins",
            "--bip", spec.bip,
            "--ip-masq=false",
            "--iptables=true",
            "--userland-proxy=false",
            "--cgroup-parent", naming.cgroup(self.site, spec.instance_id),
            "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--storage-driver", "overlay2",
            "--log-driver", "json-file",
            "--log-opt", "max-size=10m",
            "--log-opt", "max-file=3",
            "--shutdown-timeout", str(SHUTDOWN_TIMEOUT),
            "--max-concurrent-downloads", "3",
            # No --default-ulimit: this host lacks CAP_SYS_RESOURCE, so raising a container's
            # hard nofile limit above the daemon's fails in runc (EPERM); containers inherit.
            *version_flags(dockerd_version()),
        ]  # fmt: skip

    def _ensure_dockerd(self, spec: MachineSpec) -> tuple[int, bool]:
        pid = self.dockerd_pid(spec.instance_id)
        if pid is not None and _identity(procs.cmdline(pid)) != _identity(self._dockerd_argv(spec)):
            # Level-triggered: a dockerd started with other settings (another pod CIDR, say)
            # is not the machine asked for. Restarting it is the machine's reinstall. Only
            # the flags that define the machine count: a newer openccs with other tuning
            # flags must not restart every machine.
            log_event(log, "dockerd settings changed, restarting", instance=spec.instance_id,
                      pid=pid)  # fmt: skip
            self._stop_daemons(spec.instance_id, grace=SHUTDOWN_TIMEOUT + 10)
            pid = None
        started = pid is None
        if pid is None:
            # What a dead dockerd left (its containerd holds the state database's lock and
            # would block the new one; shims, containers) goes, as in a reboot.
            leftovers = self._machine_pids(spec.instance_id)
            if leftovers:
                procs.terminate(leftovers, timeout=2.0, what=f"leftovers of {spec.instance_id}")
            # dockerd trusts its containerd's pidfile and signal 0, and a dead containerd can
            # stay a zombie for a while here (PID 1 reaps lazily): the new dockerd would wait
            # for it instead of starting its own. The old containerd is gone: forget it.
            (self._exec_root(spec.instance_id) / "containerd" / "containerd.pid").unlink(
                missing_ok=True
            )
            pid = self._start_dockerd(spec)
        self._wait_ready(spec, pid)
        self._allow_pod_traffic(spec.instance_id)
        return pid, started

    def _start_dockerd(self, spec: MachineSpec) -> int:
        ns = self._netns(spec.instance_id)
        system = naming.cgroup_system(self.site, spec.instance_id)
        # The machine's system cgroup is entered first, then dockerd exec'ed (nsenter execs
        # it): dockerd, its containerd and the shims all stay in that cgroup.
        argv = cgroups.driver().daemon_argv(system, host.in_netns(ns, self._dockerd_argv(spec)))
        # A stale pidfile of a dead dockerd makes the next one refuse to start.
        self._pidfile(spec.instance_id).unlink(missing_ok=True)
        with open(spec.root_dir / "dockerd.log", "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives openccs being killed
                close_fds=True,
            )
        self._children[spec.instance_id] = proc
        log_event(log, "dockerd started", instance=spec.instance_id, pid=proc.pid, netns=ns)
        return proc.pid

    def _wait_ready(self, spec: MachineSpec, pid: int) -> None:
        sock = self.docker_socket(spec.instance_id)
        deadline = time.monotonic() + READY_TIMEOUT
        reason: str | None = "not asked yet"
        while time.monotonic() < deadline:
            if not procs.alive(pid):
                raise CloudError(
                    f"dockerd of {spec.instance_id} exited while starting; end of "
                    f"{spec.root_dir / 'dockerd.log'}:\n{_tail(spec.root_dir / 'dockerd.log')}"
                )
            reason = dockerapi.ping(sock, timeout=1.0)
            if reason is None:
                return
            time.sleep(0.1)
        raise CloudError(
            f"dockerd of {spec.instance_id} (pid {pid}) not ready in {READY_TIMEOUT:.0f} s "
            f"({reason}); end of its log:\n{_tail(spec.root_dir / 'dockerd.log')}"
        )

    def _allow_pod_traffic(self, instance_id: str) -> None:
        """dockerd sets the netns' FORWARD policy to DROP and only lets docker0's own traffic
        out; accept traffic to the pods from other machines and the host. DOCKER-USER is
        recreated by each dockerd start, so this is re-applied after every start."""
        ns = self._netns(instance_id)
        rule = ["-o", "docker0", "-j", "ACCEPT"]
        deadline = time.monotonic() + 10
        while not host.chain_exists("DOCKER-USER", netns=ns):
            if time.monotonic() > deadline:
                raise CloudError(f"dockerd of {instance_id} did not create the DOCKER-USER chain")
            time.sleep(0.1)
        if not host.rule_exists("filter", "DOCKER-USER", rule, netns=ns):
            host.iptables("-I", "DOCKER-USER", *rule, netns=ns)

    def _run_user_script(self, spec: MachineSpec) -> UserScriptResult:
        """Run the userScript once per machine (a second create reports the first run)."""
        script_path = spec.root_dir / "userscript.sh"
        log_path = spec.root_dir / "userscript.log"
        exit_path = spec.root_dir / "userscript.exit"
        if exit_path.exists():
            code = int(exit_path.read_text().strip() or "1")
            return UserScriptResult(code, log_path, _tail(log_path))
        try:
            script = base64.b64decode(spec.user_script or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            log_path.write_text(f"userScript is not valid base64: {exc}\n")
            exit_path.write_text("1\n")
            return UserScriptResult(1, log_path, log_path.read_text())
        script_path.write_bytes(script)
        started = time.monotonic()
        try:
            code, output = self._run_confined(spec, script_path)
        except CloudError as exc:
            code, output = 125, f"userScript could not start: {exc}\n".encode()
        log_path.write_bytes(output)
        exit_path.write_text(f"{code}\n")
        result = UserScriptResult(code, log_path, _tail(log_path))
        log_event(log, "userScript ran", instance=spec.instance_id, exit_code=code,
                  ms=round((time.monotonic() - started) * 1000, 1))  # fmt: skip
        return result

    def _run_confined(self, spec: MachineSpec, script_path: Path) -> tuple[int, bytes]:
        """Run the script as the machine's own root would, not the host's: in a container of
        the machine's dockerd (its cgroup), on the machine's network, with the machine's
        disk mounted at /disk (its working directory). The host's file system, processes
        and the machine's docker socket stay out of its reach. Its exit code and output."""
        sock = self.docker_socket(spec.instance_id)
        name = "openccs-userscript"
        self._remove_container(sock, name)
        try:
            dockerapi.request(sock, "GET", f"/images/{USER_SCRIPT_IMAGE}/json")
        except CloudError:
            images.import_busybox_image(sock, USER_SCRIPT_IMAGE)
        body = {
            "Image": USER_SCRIPT_IMAGE,
            "Cmd": ["sh", "/userscript.sh"],
            "WorkingDir": USER_SCRIPT_DISK,
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"HOME={USER_SCRIPT_DISK}",
                f"OPENCCS_DISK={USER_SCRIPT_DISK}",
                f"OPENCCS_INSTANCE_ID={spec.instance_id}",
            ],
            "Tty": True,  # one output stream, as the script's terminal would show it
            "Labels": {"openccs.userscript": spec.instance_id},
            "HostConfig": {
                "NetworkMode": "host",  # the machine's network namespace
                "Binds": [
                    f"{spec.root_dir / 'rootfs'}:{USER_SCRIPT_DISK}",
                    f"{script_path}:/userscript.sh:ro",
                ],
                "SecurityOpt": ["no-new-privileges"],
            },
        }
        created = dockerapi.request(
            sock, "POST", "/containers/create", params={"name": name}, json=body
        ).json()
        cid = created["Id"]
        try:
            dockerapi.request(sock, "POST", f"/containers/{cid}/start")
            try:
                waited = dockerapi.request(
                    sock, "POST", f"/containers/{cid}/wait", timeout=USER_SCRIPT_TIMEOUT
                ).json()
            except CloudError:
                return 124, f"userScript killed after {USER_SCRIPT_TIMEOUT:.0f} s\n".encode()
            logs = dockerapi.request(
                sock, "GET", f"/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"}
            ).content
            return int(waited.get("StatusCode", 1)), logs
        finally:
            self._remove_container(sock, cid)

    @staticmethod
    def _remove_container(sock: Path, ref: str) -> None:
        with contextlib.suppress(CloudError):
            dockerapi.request(sock, "DELETE", f"/containers/{ref}", params={"force": "1"})

    # -- health / stop -------------------------------------------------------------------
    def health(self, instance_id: str, timeout: float = 2.0) -> tuple[bool, str]:
        pid = self.dockerd_pid(instance_id)
        if pid is None:
            return False, f"dockerd of {instance_id} is not running"
        reason = dockerapi.ping(self.docker_socket(instance_id), timeout=timeout)
        if reason is not None:
            return False, f"dockerd of {instance_id} (pid {pid}) does not answer: {reason}"
        return True, "ok"

    def stop(self, instance_id: str) -> None:
        """Shut the machine down: dockerd stops its containers, then exits; what is left of
        its processes (containerd, shims, containers) is killed. Network and disk stay."""
        with self._lock(instance_id):
            self._stop_daemons(instance_id, grace=SHUTDOWN_TIMEOUT + 10)
        log_event(log, "machine stopped", instance=instance_id)

    def _stop_daemons(self, instance_id: str, grace: float) -> None:
        cgroups.driver().thaw(naming.cgroup(self.site, instance_id))  # frozen: cannot stop
        pid = self.dockerd_pid(instance_id)
        if pid is not None:
            procs.terminate([pid], timeout=grace, what=f"dockerd of {instance_id}")
        leftovers = self._machine_pids(instance_id)
        if leftovers:
            procs.terminate(leftovers, timeout=2.0, what=f"processes of {instance_id}")

    def _machine_pids(self, instance_id: str, root_dir: Path | None = None) -> set[int]:
        """Every process of the machine: by cgroup, and by command line for safety."""
        found = cgroups.driver().pids_in(naming.cgroup(self.site, instance_id))
        needles = [str(self.runtime_dir(instance_id)) + "/"]
        if root_dir is not None:
            needles.append(str(root_dir) + "/")
        found.update(procs.with_cmdline_containing(needles))
        found.discard(os.getpid())
        return {p for p in found if procs.alive(p)}

    # -- destroy -------------------------------------------------------------------------
    def destroy(self, instance_id: str, root_dir: Path) -> None:
        started = time.monotonic()
        with self._lock(instance_id):
            record = self._record(instance_id)
            sock = self.docker_socket(instance_id)
            if self.dockerd_pid(instance_id) is not None:
                remove_containers(sock)
            # Containers are gone (or the daemon is dead): no grace needed beyond a clean exit.
            self._stop_daemons(instance_id, grace=5.0)
            recorded = Path(str(record.get("root_dir") or root_dir))
            unmount_under([self.runtime_dir(instance_id), root_dir, recorded])
            for d in {root_dir, recorded}:
                remove_disk(d)
            ns = self._netns(instance_id)
            if host.netns_exists(ns):
                host.run(["ip", "netns", "del", ns])
            self._remove_veth(instance_id)
            if record.get("lan_ip"):
                delete_host_routes_via(str(record["lan_ip"]))
            cgroups.driver().remove(naming.cgroup(self.site, instance_id))
            cgroups.driver().remove_if_empty(naming.cgroup_site(self.site))
            shutil.rmtree(self.runtime_dir(instance_id), ignore_errors=True)
            _rmdir_quiet(naming.site_runtime_dir(self.site, self.runtime_base))
            _rmtree(root_dir)
        log_event(log, "machine destroyed", instance=instance_id, site=self.site,
                  ms=round((time.monotonic() - started) * 1000, 1))  # fmt: skip

    def _remove_veth(self, instance_id: str) -> None:
        """The host side of the veth goes with the netns, but asynchronously (the kernel
        cleans namespaces up in a work queue): delete it if it lingers, then wait."""
        veth = naming.host_veth(self.site, instance_id)
        deadline = time.monotonic() + 5
        while host.link_exists(veth):
            result = host.run(["ip", "link", "del", "dev", veth], check=False, quiet=True)
            if time.monotonic() > deadline:
                raise CloudError(f"cannot delete {veth}: {result.stderr.strip()}")
            time.sleep(0.05)

    def _record(self, instance_id: str) -> dict[str, object]:
        try:
            data: dict[str, object] = json.loads(
                (self.runtime_dir(instance_id) / "machine.json").read_text()
            )
            return data
        except (OSError, ValueError):
            return {}


def reachable(ip: str, port: int = REACH_PORT) -> bool:
    """Whether `ip` answers a connection at all (accepted or refused) within a timeout, in
    one of a few tries (a lossy link is not an unreachable one)."""
    for _ in range(REACH_TRIES):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.settimeout(REACH_TIMEOUT)
            try:
                sock.connect((ip, port))
                return True
            except ConnectionRefusedError:
                return True
            except OSError:
                continue
    return False


def remove_containers(sock: Path) -> None:
    """Force-remove every container (a destroyed machine's containers get no grace)."""
    try:
        for c in dockerapi.containers(sock):
            dockerapi.request(sock, "DELETE", f"/containers/{c['Id']}", params={"force": "1"})
    except CloudError as exc:
        # The daemons are killed next anyway; their processes go with the cgroup.
        log_event(log, "removing containers failed", socket=str(sock), error=exc.message)


def mounts_under(dirs: list[Path]) -> list[str]:
    """Mount points at or below `dirs`, deepest first (from /proc/self/mountinfo)."""
    prefixes = [str(d).rstrip("/") for d in dirs]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_under(dirs: list[Path]) -> list[str]:
    """Unmount everything below `dirs` (overlay rootfs, netns binds, shm...)."""
    done = []
    for point in mounts_under(dirs):
        if not host.ok(["umount", point]):
            # Busy: detach it now; the kernel finishes when the last user goes.
            host.run(["umount", "-l", point], check=False)
        done.append(point)
    if done:
        log_event(log, "unmounted", count=len(done))
    return done


def disk_image(root_dir: Path) -> Path:
    """The sparse image holding a machine's disk, beside its directory."""
    return root_dir.with_name(root_dir.name + ".ext4")


def has_disk(root_dir: Path) -> bool:
    """Whether the machine's directory is a disk of its own (its image mounted there)."""
    return disk_image(root_dir).exists() and str(root_dir) in mounts_under([root_dir])


def ensure_disk(root_dir: Path, size_gib: int) -> None:
    """Mount the machine's disk at `root_dir`: kept when mounted (a restart of openccs, a
    machine's boot), mounted again when its image is there (the host rebooted), made when
    the machine is new and asked for one. A machine made on a plain directory stays one:
    a new empty disk over it would hide its docker data."""
    image = disk_image(root_dir)
    if not image.exists():
        if size_gib <= 0 or (root_dir.exists() and any(root_dir.iterdir())):
            return
        made = image.with_name(image.name + ".new")
        root_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Sparse: the host's disk holds what the machine writes, not its size. No
            # reserved blocks (the machine's root would write past "full"); inode tables
            # and journal are not zeroed now (nor later: noinit_itable below).
            host.run(["truncate", "-s", f"{size_gib}G", str(made)])
            lazy = "lazy_itable_init=1,lazy_journal_init=1,nodiscard"
            host.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", lazy, str(made)])
            made.rename(image)
        finally:
            made.unlink(missing_ok=True)
    root_dir.mkdir(parents=True, exist_ok=True)
    if str(root_dir) in mounts_under([root_dir]):
        return
    # mount -o loop sets up its loop device to detach itself on the last unmount.
    host.run(["mount", "-t", "ext4", "-o", "loop,noinit_itable", str(image), str(root_dir)])
    log_event(log, "machine disk mounted", image=str(image), gib=size_gib)


def detach_image(image: Path) -> list[str]:
    """Detach the loop devices still backed by `image` (a lazy unmount leaves them until
    the last user goes; detaching marks them to go then)."""
    shown = host.run(["losetup", "-j", str(image)], check=False, quiet=True).stdout
    devices = [line.split(":", 1)[0] for line in shown.splitlines() if line.startswith("/dev/")]
    for dev in devices:
        host.run(["losetup", "-d", dev], check=False, quiet=True)
    return devices


def remove_disk(root_dir: Path) -> None:
    """The machine's disk goes: its loop devices detached, its image removed (unmounted
    before, by unmount_under)."""
    image = disk_image(root_dir)
    if image.exists():
        detach_image(image)
        image.unlink(missing_ok=True)
        log_event(log, "machine disk removed", image=str(image))


def delete_host_routes_via(lan_ip: str) -> None:
    """Host routes openccs added through this machine (pod CIDR routes)."""
    shown = host.run(["ip", "-4", "route", "show", "proto", naming.ROUTE_PROTO], quiet=True).stdout
    for line in shown.splitlines():
        parts = line.split()
        if "via" in parts and parts[parts.index("via") + 1] == lan_ip:
            host.run(["ip", "route", "del", parts[0], "via", lan_ip], check=False)


# The dockerd flags that differ between the Docker Engine versions Debian and Ubuntu ship
# (20.10 to 28): (first version that needs them, flags).
VERSION_FLAGS: tuple[tuple[tuple[int, int], tuple[str, ...]], ...] = (
    # 28 drops packets from outside the host addressed to container addresses; pods are
    # reached that way from the other machines and the host. 28.2 has the flag to allow it.
    ((28, 2), ("--allow-direct-routing",)),
)


def version_flags(version: tuple[int, int]) -> list[str]:
    return [flag for since, flags in VERSION_FLAGS if version >= since for flag in flags]


_dockerd_version: tuple[int, int] | None = None


def parse_docker_version(text: str) -> tuple[int, int]:
    """(major, minor) from `dockerd --version` ("Docker version 20.10.24+dfsg1, build ...")."""
    match = re.search(r"version (\d+)\.(\d+)", text)
    if match is None:
        raise CloudError(f"cannot read the dockerd version from {text.strip()[:200]!r}")
    return int(match.group(1)), int(match.group(2))


def dockerd_version() -> tuple[int, int]:
    global _dockerd_version
    if _dockerd_version is None:
        _dockerd_version = parse_docker_version(host.run([DOCKERD, "--version"], quiet=True).stdout)
    return _dockerd_version


IDENTITY_FLAGS = ("--data-root", "--exec-root", "--bip", "--cgroup-parent")


def _identity(argv: list[str]) -> list[str | None]:
    return [_flag(argv, f) for f in IDENTITY_FLAGS]


def _flag(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode(errors="replace")


def _rmtree(path: Path) -> None:
    if not path.exists():
        return
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise CloudError(f"cannot remove machine directory {path}: {exc}") from exc


def _rmdir_quiet(path: Path) -> None:
    # Not empty: other machines of the site are still there.
    with contextlib.suppress(OSError):
        path.rmdir()
