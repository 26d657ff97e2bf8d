"""Faults over the local cloud: each kind knows how to break a machine, its network or a pod
for real, and how to undo exactly that. Both directions are idempotent, so a restore that
is cut short (openccs killed) is simply run again.

| kind           | inject                                            | restore                  |
| -------------- | ------------------------------------------------- | ------------------------ |
| machine-stop   | dockerd and containers stop, address silent       | boot, address back       |
| machine-reboot | dockerd and containers stop                       | boot                     |
| dockerd-kill   | SIGKILL to the machine's dockerd only             | boot (dockerd again)     |
| machine-freeze | every process of the machine frozen (cgroup)      | thawed                   |
| net-cut        | DROP on the machine's VPC link (in, out or both)  | rules and chain removed  |
| net-loss       | DROP of a random share of packets on that link    | rules and chain removed  |
| registry-cut   | REJECT of the machine's pulls from the registry   | rules and chain removed  |
| registry-refuse| the registry refuses a cluster's pulls (REJECT)    | rules and chain removed  |
| registry-stall | the registry stalls a cluster's pulls (DROP)       | rules and chain removed  |
| pod-kill       | SIGKILL to a pod's main process (one-shot)        | nothing to undo          |
| pod-liveness   | the pod's liveness probes fail (kubelet's prober) | they probe for real again|
| disk-fill      | one file takes the free space of the machine's    | that file removed        |
|                | disk, in a container's writable layer or a volume |                          |

Network rules live in the machine's network namespace, in a chain of the fault's own
(`OCC-<site>-F<id8>`), hooked first into INPUT, OUTPUT and FORWARD (pods are behind it).
Packet loss uses iptables' `statistic` match: this host's kernel has no netem, so delay,
duplication and reordering are not offered.

A liveness fault acts on openccs' own kubelet, its prober: whatever the probe checks (an
HTTP path, a port, a command), it fails while the fault is in force, so the container is
killed and restarted with back-off as Kubernetes does. The set of failing pods is rebuilt
from the store on every pass of the keeper, so a restart of openccs keeps it.

A disk fault needs machines with disks of their own (`openccs serve --machine-disks loop`:
an ext4 file system on a sparse image): on a directory of the host it would fill the host.
The filler is one file made by fallocate, in unwritten extents: the machine's disk is full
(writes fail with ENOSPC, `df` shows 100%) while the image on the host's disk grows by a
few blocks of metadata only. It goes in the upper directory of the pod's first container
(its writable layer, as overlay2 keeps it) or in the directory of one of its volumes, both
resolved beneath the machine's disk by `cloud.safepath` (a tenant's links lead nowhere
else). Where it went is recorded before it is made, so a restore after a crash finds it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.cloud import cgroups, dockerapi, host, naming, safepath
from openccs.cloud.host import CloudError
from openccs.cloud.machine import has_disk
from openccs.engine import probes
from openccs.engine.docker import POD_LABEL, pod_containers
from openccs.faults.models import Fault
from openccs.log import get_logger, log_event
from openccs.store.models import Instance, Pod

if TYPE_CHECKING:
    from openccs.cloud.component import Cloud

log = get_logger("openccs.faults")

MACHINE_KINDS = ("machine-stop", "machine-reboot", "dockerd-kill", "machine-freeze")
NETWORK_KINDS = ("net-cut", "net-loss", "registry-cut")
# The registry as a cluster's machines see it (it is shared by every account: an account
# breaks it for its own machines only, on their side of the network).
CLUSTER_KINDS = ("registry-refuse", "registry-stall")
POD_KINDS = ("pod-kill", "pod-liveness", "disk-fill")
KINDS = MACHINE_KINDS + NETWORK_KINDS + CLUSTER_KINDS + POD_KINDS
# Kinds whose injection is all there is (their record ends at once).
ONE_SHOT = ("pod-kill",)
HOOKS = ("INPUT", "OUTPUT", "FORWARD")
LINK = "eth0"  # the machine's side of its VPC veth
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
FILLER = ".openccs-fill-"  # the disk fault's file: this prefix and the fault's id
NO_DISK = (
    "has no disk of its own (its disk is a directory of the host, which a fill would"
    " fill): start openccs with --machine-disks loop"
)


@dataclass(frozen=True)
class PodRef:
    """What a fault needs of a pod once the transaction that read it is over."""

    node_id: str
    uid: str
    name: str
    template: dict[str, Any]

    @classmethod
    def of(cls, s: Session, pod_id: int) -> PodRef | None:
        pod = s.get(Pod, pod_id)
        if pod is None:
            return None
        return cls(pod.node_id or "", pod.uid, pod.name, dict(pod.template or {}))


class FaultError(Exception):
    """A fault that cannot be injected; the message says why."""


def chain(site: str, fault_id: str) -> str:
    return f"{naming.CHAIN_PREFIX}{naming.check_site(site)}-F{naming.short_id(fault_id)}"


class Backend:
    """Injects and restores faults on the machines of one site."""

    def __init__(self, cloud: Cloud, registry_port: int | None = None) -> None:
        self.cloud = cloud
        self.site = cloud.site
        self.registry_port = registry_port

    # -- the two directions ----------------------------------------------------------------
    def inject(self, s: Session, fault: Fault) -> None:
        kind, iid = fault.kind, fault.instance_id
        if kind in ("machine-stop", "machine-reboot"):
            if kind == "machine-stop":
                self._net_rules(fault, self._drop_all("both"))
            self.cloud.engine.stop(iid)
        elif kind == "dockerd-kill":
            pid = self.cloud.engine.dockerd_pid(iid)
            if pid is None:
                raise FaultError(f"the dockerd of {iid} is not running")
            os.kill(pid, signal.SIGKILL)
        elif kind == "machine-freeze":
            self._freeze(fault, True)
        elif kind == "net-cut":
            self._net_rules(fault, self._drop_all(str(fault.params.get("direction", "both"))))
        elif kind == "net-loss":
            share = int(fault.params["percent"]) / 100
            stat = ["-m", "statistic", "--mode", "random", "--probability", f"{share:.4f}"]
            self._net_rules(fault, [["-i", LINK, *stat, "-j", "DROP"],
                                    ["-o", LINK, *stat, "-j", "DROP"]])  # fmt: skip
        elif kind == "registry-cut":
            self._net_rules(fault, [self._registry_rule(s, iid, refuse=True)])
        elif kind in CLUSTER_KINDS:
            for machine in fault.params["machines"]:
                rule = self._registry_rule(s, machine, refuse=kind == "registry-refuse")
                self._net_rules(fault, [rule], machine)
        elif kind == "pod-kill":
            self._kill_pod(s, fault)
        elif kind == "pod-liveness":
            if s.get(Pod, int(fault.params["podId"])) is None:
                raise FaultError(f"pod {fault.pod} is gone")
            sync_liveness(s)
        elif kind == "disk-fill":
            self._fill(s, fault)
        log_event(log, "fault injected", fault=fault.id, kind=kind, instance=iid, pod=fault.pod)

    def restore(self, s: Session, fault: Fault) -> None:
        kind, iid = fault.kind, fault.instance_id
        if kind in NETWORK_KINDS or kind == "machine-stop":
            self._remove_rules(fault)
        elif kind in CLUSTER_KINDS:
            for machine in fault.params["machines"]:
                self._remove_rules(fault, machine)
        if kind in ("machine-stop", "machine-reboot", "dockerd-kill"):
            ins = s.get(Instance, iid)
            if ins is not None and ins.state not in ("Deleting",):
                self.cloud.engine.start(self.cloud.spec_for(s, ins))
        elif kind == "machine-freeze":
            self._freeze(fault, False)
        elif kind == "pod-liveness":
            sync_liveness(s, ending=fault.id)
        elif kind == "disk-fill":
            self._unfill(fault)
        log_event(log, "fault restored", fault=fault.id, kind=kind, instance=iid)

    # -- network ---------------------------------------------------------------------------
    @staticmethod
    def _drop_all(direction: str) -> list[list[str]]:
        rules = []
        if direction in ("both", "in"):
            rules.append(["-i", LINK, "-j", "DROP"])
        if direction in ("both", "out"):
            rules.append(["-o", LINK, "-j", "DROP"])
        return rules

    def _net_rules(self, fault: Fault, rules: list[list[str]], machine: str = "") -> None:
        machine = machine or fault.instance_id
        ns = naming.netns(self.site, machine)
        if not host.netns_exists(ns):
            raise FaultError(f"machine {machine} has no network namespace")
        name = chain(self.site, fault.id)
        if not host.chain_exists(name, netns=ns):
            host.iptables("-N", name, netns=ns)
        host.iptables("-F", name, netns=ns)
        for rule in rules:
            host.iptables("-A", name, *rule, netns=ns)
        for hook in HOOKS:
            if not host.rule_exists("filter", hook, ["-j", name], netns=ns):
                host.iptables("-I", hook, "1", "-j", name, netns=ns)

    def _remove_rules(self, fault: Fault, machine: str = "") -> None:
        ns = naming.netns(self.site, machine or fault.instance_id)
        if not host.netns_exists(ns):
            return  # the machine is gone, and its rules with it
        name = chain(self.site, fault.id)
        for hook in HOOKS:
            while host.rule_exists("filter", hook, ["-j", name], netns=ns):
                host.iptables("-D", hook, "-j", name, netns=ns)
        if host.chain_exists(name, netns=ns):
            host.iptables("-F", name, netns=ns)
            host.iptables("-X", name, netns=ns)

    def _registry_rule(self, s: Session, iid: str, refuse: bool) -> list[str]:
        """The machine's connections to the registry refused at once, or dropped (a pull
        then hangs until the client gives up)."""
        gateway, port = self._registry_of(s, iid)
        verdict = ["REJECT", "--reject-with", "tcp-reset"] if refuse else ["DROP"]
        return ["-o", LINK, "-d", gateway, "-p", "tcp", "--dport", str(port), "-j", *verdict]

    def _registry_of(self, s: Session, iid: str) -> tuple[str, int]:
        from openccs.domain.cloud import gateway_of
        from openccs.store.models import Subnet

        ins = s.get(Instance, iid)
        sub = s.get(Subnet, ins.subnet_id) if ins is not None else None
        if sub is None or self.registry_port is None:
            raise FaultError("the registry is not served to this machine")
        return str(gateway_of(sub.cidr).ip), self.registry_port

    # -- cgroups ---------------------------------------------------------------------------
    def _freeze(self, fault: Fault, frozen: bool) -> None:
        tree = cgroups.driver()
        machine = naming.cgroup(self.site, fault.instance_id)
        if tree.version == 2:
            if frozen:
                _write(tree.path("", machine) / "cgroup.freeze", "1")
            else:
                tree.thaw(machine)
            return
        if not (tree.root / "freezer" / "cgroup.procs").exists():
            raise FaultError("this host has no freezer cgroup controller")
        # The containers are in the machine's freezer cgroup already (runc puts them in every
        # hierarchy); its daemons are placed in the other controllers only, so they join a
        # `system` freezer cgroup of the machine for the freeze and leave it after.
        cg = tree.path("freezer", machine)
        system = tree.path("freezer", naming.cgroup_system(self.site, fault.instance_id))
        if frozen:
            system.mkdir(parents=True, exist_ok=True)
            for pid in sorted(self.cloud.engine._machine_pids(fault.instance_id)):
                if _freezer_of(pid) == "/":
                    with contextlib.suppress(CloudError):  # gone meanwhile
                        _write(system / "cgroup.procs", str(pid))
            _write(cg / "freezer.state", "FROZEN")
            return
        tree.thaw(machine)
        if system.exists():
            for moved in (system / "cgroup.procs").read_text().split():
                with contextlib.suppress(CloudError):  # gone meanwhile
                    _write(tree.root / "freezer" / "cgroup.procs", moved)
            with contextlib.suppress(OSError):
                system.rmdir()

    # -- pods ------------------------------------------------------------------------------
    def _kill_pod(self, s: Session, fault: Fault) -> None:
        sock = self.cloud.engine.docker_socket(fault.instance_id)
        pod = s.get(Pod, int(fault.params["podId"]))
        if pod is None:
            raise FaultError(f"pod {fault.pod} is gone")
        targets = [
            c["Id"]
            for c in pod_containers(sock)
            if c["Labels"].get(POD_LABEL) == pod.uid
            and c["Labels"].get("openccs.role") != "pause"
            and c["State"] == "running"
        ]
        if not targets:
            raise FaultError(f"pod {fault.pod} has no running container to kill")
        for cid in targets:
            dockerapi.request(sock, "POST", f"/containers/{cid}/kill", params={"signal": "KILL"})

    # -- disks -----------------------------------------------------------------------------
    def has_disk(self, instance_id: str) -> bool:
        return has_disk(self.cloud.root_dir(instance_id))

    def prepare(self, kind: str, params: dict[str, Any], pod: PodRef | None) -> dict[str, Any]:
        """What a fault must record before it breaks anything (the keeper commits it with
        the fault): for a disk fault, where its file goes, so a restore after a crash finds
        it. Called outside any transaction (it asks the machine's dockerd)."""
        if kind != "disk-fill":
            return {}
        if pod is None or not pod.node_id:
            raise FaultError("the pod is gone")
        if not self.has_disk(pod.node_id):
            raise FaultError(f"machine {pod.node_id} {NO_DISK}")
        return self._fill_dir(pod, str(params.get("which") or "layer"))

    def _fill(self, s: Session, fault: Fault) -> None:
        dir_fd = self._open_fill_dir(fault)
        if dir_fd is None:
            raise FaultError(f"the container of pod {fault.pod} is gone")
        try:
            if not stat.S_ISDIR(os.fstat(dir_fd).st_mode):
                raise FaultError(f"{fault.params['fillPath']} is not a directory to fill")
            fd = os.open(FILLER + fault.id, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)  # fmt: skip
            try:
                size = _fill_free(fd)
            except BaseException:
                os.unlink(FILLER + fault.id, dir_fd=dir_fd)  # not injected: nothing left
                raise
            finally:
                os.close(fd)
        finally:
            os.close(dir_fd)
        fault.params = {**fault.params, "fillBytes": size}

    def _fill_dir(self, pod: PodRef, which: str) -> dict[str, Any]:
        """Where the filler goes: a directory below a root on the machine's disk, and for
        the writable layer the container whose layer it is."""
        root_dir = self.cloud.root_dir(pod.node_id or "")
        if which != "layer":
            vols = {v["name"]: v for v in pod.template.get("volumes") or []}
            vol = vols.get(which)
            if vol is None:
                raise FaultError(f"pod {pod.name} has no volume {which!r}")
            if vol.get("hostPath"):
                return {"fillRoot": str(root_dir / "rootfs"), "fillPath": str(vol["hostPath"])}
            return {"fillRoot": str(root_dir / "pods" / pod.uid / "volumes"), "fillPath": which}
        sock = self.cloud.engine.docker_socket(pod.node_id or "")
        apps = sorted(
            (c for c in pod_containers(sock) if c["Labels"].get(POD_LABEL) == pod.uid
             and c["Labels"].get("openccs.role") != "pause" and c["State"] == "running"),
            key=lambda c: _container_index(pod, c["Labels"].get("openccs.container", "")),
        )  # fmt: skip
        if not apps:
            raise FaultError(f"pod {pod.name} has no running container to fill the layer of")
        info = dockerapi.request(sock, "GET", f"/containers/{apps[0]['Id']}/json").json()
        upper = str(((info.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir") or "")
        if not upper.startswith(f"{root_dir / 'docker'}/"):
            raise FaultError(f"the writable layer of pod {pod.name} is not on the machine's disk")
        return {"fillRoot": str(root_dir), "fillPath": upper[len(f"{root_dir}/") :],
                "fillContainer": apps[0]["Id"]}  # fmt: skip

    def _open_fill_dir(self, fault: Fault) -> int | None:
        """A descriptor of the directory of the fault's file; None when it is gone. The
        writable layer of a running container is reached through the container's own root
        (overlayfs must see the file come and go: changed beneath it, its upper directory
        would keep the file in its caches, and its space); once the container is stopped,
        in its upper directory."""
        root, path = Path(str(fault.params["fillRoot"])), str(fault.params["fillPath"])
        cid = fault.params.get("fillContainer")
        if cid:
            if not root.is_dir():
                return None  # the machine is gone, and its disk
            sock = self.cloud.engine.docker_socket(fault.instance_id)
            found = dockerapi.request(sock, "GET", "/containers/json", params={
                "all": "1", "filters": json.dumps({"id": [cid]})}).json()  # fmt: skip
            if not found:
                return None  # removed, with its layer
            info = dockerapi.request(sock, "GET", f"/containers/{cid}/json").json()
            state = info.get("State") or {}
            if state.get("Running") and int(state.get("Pid") or 0) > 0:
                return os.open(f"/proc/{state['Pid']}/root", _DIR_FLAGS)
        try:
            return safepath.open_beneath(root, path)
        except safepath.UnsafePath as exc:
            raise FaultError(f"the directory to fill leaves the machine's disk: {exc}") from exc
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _unfill(self, fault: Fault) -> None:
        """The filler goes, if it is still a file of the fault's name (a tenant may have
        removed it, or put something else there)."""
        if not fault.params.get("fillRoot"):
            return  # not injected: nothing was made
        try:
            dir_fd = self._open_fill_dir(fault)
        except FaultError as exc:
            # Moved by a tenant out of reach: nothing of ours can be reached there any more.
            log_event(log, "disk filler out of reach", fault=fault.id, reason=str(exc))
            return
        if dir_fd is None:
            return  # gone with its container, volume or machine
        name = FILLER + fault.id
        try:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISREG(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


def _container_index(pod: PodRef, name: str) -> int:
    names = [c.get("containerName") for c in pod.template.get("containers") or []]
    return names.index(name) if name in names else len(names)


def _fill_free(fd: int) -> int:
    """Allocate all the free space of fd's file system to its file (unwritten extents:
    nothing is written), in halving steps once a step no longer fits (the extents' own
    metadata takes some of the space counted free). The bytes allocated."""
    st = os.fstatvfs(fd)
    block = st.f_frsize or 4096
    size, step = 0, st.f_bavail * block
    while step >= block:
        try:
            os.posix_fallocate(fd, size, step)
            size += step
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            step = step // 2 // block * block
    return size


def sync_liveness(s: Session, ending: str = "") -> None:
    """The prober fails the liveness probes of the pods under an active liveness fault
    (but the one `ending`), and of no others."""
    failing = {
        str(f.params.get("podUid", "")): f"liveness fails on purpose (fault {f.id})"
        for f in s.scalars(
            select(Fault).where(Fault.state == "active", Fault.kind == "pod-liveness")
        )
        if f.id != ending
    }
    probes.fail_liveness(failing)


def _write(file: Path, value: str) -> None:
    try:
        file.write_text(value)
    except OSError as exc:
        raise CloudError(f"cannot write {value!r} to {file}: {exc.strerror or exc}") from exc


def _freezer_of(pid: int) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "freezer" in controllers.split(","):
                return path
    except (OSError, ValueError):
        return None
    return None
