"""`openccs doctor`: checks this host by doing what openccs does (a netns with a veth on a
bridge, a cgroup, an iptables rule), and says what to install or change.

Each check is ok, a note (openccs runs, with the limitation it names) or a problem (a
CreateCluster would fail); the exit code is 0 only when there is no problem.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openccs.cloud import cgroups
from openccs.cloud.machine import parse_docker_version

# Debian packages the engines of openccs come from.
PACKAGES = {
    "docker.io": "dockerd runs each machine's containers",
    "docker-registry": "the image registry (Docker Distribution)",
    "nginx": "ingress",
    "dnsmasq": "cluster DNS",
    "iptables": "service addresses and load balancers",
    "conntrack": "UDP load balancing: forgets flows to pods that left",
    "iproute2": "network namespaces, bridges, veth, routes",
    "util-linux": "unshare, nsenter, mount: the machines' namespaces",
    "skopeo": "image copies (tests and image building)",
    "busybox-static": "offline infrastructure and test images",
}
# The Docker Engine versions openccs is built for (Debian and Ubuntu ship these).
DOCKER_SUPPORTED = ((20, 10), (28, 99))

OK, NOTE, PROBLEM = "ok", "--", "!!"


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 127, "", str(exc))


def package_version(pkg: str) -> str | None:
    """The installed version of a Debian package, None when it is not installed."""
    if not shutil.which("dpkg-query"):
        return None
    r = _run(["dpkg-query", "-W", "-f=${Status}\t${Version}", pkg])
    status, _, version = r.stdout.partition("\t")
    return version if r.returncode == 0 and "install ok installed" in status else None


def check_packages() -> list[Check]:
    out = []
    for pkg, why in PACKAGES.items():
        version = package_version(pkg)
        if version is None:
            out.append(Check(f"package {pkg}", PROBLEM, f"not installed ({why})"))
        else:
            out.append(Check(f"package {pkg}", OK, f"{version} ({why})"))
    return out


def check_docker_version() -> Check:
    if not shutil.which("dockerd"):
        return Check("Docker Engine", PROBLEM, "no dockerd: apt-get install docker.io")
    text = _run(["dockerd", "--version"]).stdout
    try:
        version = parse_docker_version(text)
    except Exception:
        return Check("Docker Engine", PROBLEM, f"cannot read the version of {text.strip()!r}")
    shown = f"{version[0]}.{version[1]}"
    low, high = DOCKER_SUPPORTED
    if version < low:
        return Check("Docker Engine", PROBLEM, f"{shown}: openccs needs 20.10 or newer")
    if version > high:
        return Check("Docker Engine", NOTE, f"{shown}: newer than 28, not tested")
    return Check("Docker Engine", OK, f"{shown} (Engine API 1.41 is spoken to every machine)")


def check_cgroups(tree: cgroups.Driver | None = None) -> list[Check]:
    """The cgroup mode, each controller openccs uses, and that a cgroup can be made."""
    tree = tree or cgroups.driver()
    out = [Check("cgroup mode", OK, tree.describe())]
    if not tree.hierarchies():
        return [Check("cgroup mode", PROBLEM, f"no cgroup hierarchy at {tree.root}")]
    missing = tree.missing()
    for controller, what in cgroups.ENFORCED.items():
        if controller in missing:
            why = f"not available: {what} is not enforced (machines still run)"
            out.append(Check(f"cgroup controller {controller}", NOTE, why))
        else:
            out.append(Check(f"cgroup controller {controller}", OK, f"limits {what}"))
    probe = f"/{cgroups_probe_name()}"
    try:
        tree.ensure_machine(probe, f"{probe}/system", 1.0, 64)
        out.append(Check("cgroup creation", OK, f"made and removed {probe}"))
    except Exception as exc:
        out.append(Check("cgroup creation", PROBLEM, str(exc)))
    finally:
        try:
            tree.remove(probe, wait=2.0)
        except Exception as exc:
            out.append(Check("cgroup removal", PROBLEM, str(exc)))
    return out


def cgroups_probe_name() -> str:
    return f"openccs-doctor-{secrets.token_hex(3)}"


def check_network() -> list[Check]:
    """A namespace with a veth pair whose host side is on a bridge, as a machine has; all
    removed again. Whatever fails is named with the command's error."""
    tag = secrets.token_hex(3)
    ns, veth, bridge = f"occdoctor-{tag}", f"odv{tag}", f"odb{tag}"
    steps: list[tuple[str, list[str]]] = [
        ("network namespace", ["ip", "netns", "add", ns]),
        ("bridge", ["ip", "link", "add", "name", bridge, "type", "bridge"]),
        ("veth", ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                  "netns", ns]),
        ("veth on bridge", ["ip", "link", "set", "dev", veth, "master", bridge, "up"]),
    ]  # fmt: skip
    out = []
    try:
        for name, argv in steps:
            r = _run(argv)
            if r.returncode != 0:
                out.append(Check(name, PROBLEM, f"{' '.join(argv)}: {r.stderr.strip()}"))
                break
            out.append(Check(name, OK, "created and removed"))
    finally:
        _run(["ip", "link", "del", "dev", veth])
        _run(["ip", "link", "del", "dev", bridge])
        _run(["ip", "netns", "del", ns])
    return out


def iptables_flavour(version_text: str) -> str:
    """ "nf_tables" or "legacy" from `iptables --version` ("iptables v1.8.9 (nf_tables)")."""
    match = re.search(r"\((nf_tables|legacy)\)", version_text)
    return match.group(1) if match else "legacy"


def count_rules(save_text: str) -> int:
    return sum(1 for line in save_text.splitlines() if line.startswith("-A "))


def check_iptables() -> list[Check]:
    r = _run(["iptables", "--version"])
    if r.returncode != 0:
        return [Check("iptables", PROBLEM, "no iptables: apt-get install iptables")]
    flavour = iptables_flavour(r.stdout)
    listed = _run(["iptables", "-w", "-S", "FORWARD"])
    if listed.returncode != 0:
        return [Check("iptables", PROBLEM, f"iptables ({flavour}) fails: {listed.stderr.strip()}")]
    out = [Check("iptables", OK, f"{flavour}: openccs's rules go there")]
    # Both back ends filter every packet: rules of the host's firewall kept in the other one
    # (a DROP policy, say) apply too, and openccs's ACCEPT rules do not reach them.
    other = "legacy" if flavour == "nf_tables" else "nft"
    saved = _run([f"iptables-{other}-save"])
    rules = count_rules(saved.stdout) if saved.returncode == 0 else 0
    drops = [ln for ln in saved.stdout.splitlines() if ln.startswith(":FORWARD DROP")]
    if rules or drops:
        policy = " and a FORWARD DROP policy" if drops else ""
        why = (
            f"{rules} rule(s){policy} in the {other} tables, which the kernel applies too "
            "but openccs does not write: use one (update-alternatives --config iptables)"
        )
        out.append(Check(f"iptables-{other}", PROBLEM, why))
    else:
        out.append(Check(f"iptables-{other}", OK, "empty: no second firewall"))
    return out


def _sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", *key.split(".")).read_text().strip()
    except OSError:
        return None


def check_sysctls() -> list[Check]:
    out = []
    forward = _sysctl("net.ipv4.ip_forward")
    writable = os.access("/proc/sys/net/ipv4/ip_forward", os.W_OK)
    if forward == "1":
        out.append(Check("ip_forward", OK, "1"))
    elif writable:
        why = f"{forward}: openccs sets it to 1 with the first VPC and leaves it so"
        out.append(Check("ip_forward", NOTE, why))
    else:
        out.append(Check("ip_forward", PROBLEM, f"{forward} and /proc/sys is read-only"))
    bridged = _sysctl("net.bridge.bridge-nf-call-iptables")
    if bridged is None:
        why = "not loaded: traffic between machines of a VPC is bridged unfiltered"
        out.append(Check("br_netfilter", OK, why))
    else:
        out.append(Check("br_netfilter", OK,
                         f"loaded (bridge-nf-call-iptables={bridged}): openccs's FORWARD chain "
                         "accepts its bridges' traffic"))  # fmt: skip
    return out


def check_kernel() -> list[Check]:
    filesystems = Path("/proc/filesystems").read_text()
    # Only `serve --machine-disks loop` needs them: a note, not a problem, when missing.
    lacking = [what for what, there in (
        ("the ext4 file system", "ext4" in filesystems),
        ("loop devices (/dev/loop-control)", Path("/dev/loop-control").exists()),
        ("mkfs.ext4 (e2fsprogs)", shutil.which("mkfs.ext4") is not None),
    ) if not there]  # fmt: skip
    return [
        Check("overlay filesystem", OK if "overlay" in filesystems else PROBLEM,
              "" if "overlay" in filesystems else "modprobe overlay"),
        Check("machine disks (--machine-disks loop)", NOTE if lacking else OK,
              f"missing {', '.join(lacking)}" if lacking else "ext4 on loop devices"),
    ]  # fmt: skip


def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("running as root", OK)
    return Check("running as root", PROBLEM, "run as root")


def all_checks() -> list[Check]:
    groups: list[Callable[[], list[Check]]] = [
        lambda: [check_root()],
        check_kernel,
        check_cgroups,
        check_network,
        check_iptables,
        check_sysctls,
        lambda: [check_docker_version()],
        check_packages,
    ]
    out: list[Check] = []
    for group in groups:
        out.extend(group())
    return out


def run_doctor() -> int:
    print("openccs doctor")
    checks = all_checks()
    for c in checks:
        print(f"  [{c.status}] {c.name}" + (f": {c.detail}" if c.detail else ""))
    missing = [c.name.split()[1] for c in checks if c.name.startswith("package ")
               and c.status == PROBLEM]  # fmt: skip
    if missing:
        print(
            "\nInstall what is missing:\n  apt-get update && apt-get install -y "
            + " ".join(missing)
        )
    problems = sum(c.status == PROBLEM for c in checks)
    notes = [c.name for c in checks if c.status == NOTE]
    if notes:
        print(f"\nnot enforced or not tested: {', '.join(notes)}")
    print("\nall good" if not problems else f"\n{problems} problem(s)")
    return 0 if not problems else 1
