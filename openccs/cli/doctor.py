"""`openccs doctor`: what this machine has, and what to install for what openccs needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Debian packages the engines of openccs come from.
PACKAGES = {
    "docker.io": "dockerd runs each machine's containers",
    "docker-registry": "the image registry (Docker Distribution)",
    "nginx": "ingress",
    "dnsmasq": "cluster DNS",
    "iptables": "service addresses and load balancers",
    "conntrack": "UDP load balancing: forgets flows to pods that left",
    "iproute2": "network namespaces, bridges, veth, routes",
    "skopeo": "image copies (tests and image building)",
    "busybox-static": "offline infrastructure and test images",
}


def _installed(pkg: str) -> bool:
    if not shutil.which("dpkg-query"):
        return False
    r = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
    )
    return r.returncode == 0 and "install ok installed" in r.stdout


def _kernel_checks() -> list[tuple[str, bool, str]]:
    modules = Path("/proc/modules").read_text() if Path("/proc/modules").exists() else ""
    filesystems = Path("/proc/filesystems").read_text()
    checks = [
        ("network namespaces", Path("/proc/self/ns/net").exists(), "kernel without CONFIG_NET_NS"),
        (
            "overlay filesystem",
            "overlay" in filesystems or "overlay " in modules,
            "modprobe overlay",
        ),
        ("cgroups", Path("/sys/fs/cgroup").is_dir(), "mount the cgroup hierarchy"),
        (
            "bridge",
            Path("/sys/module/bridge").exists() or "bridge " in modules,
            "modprobe bridge",
        ),
        ("veth", Path("/sys/module/veth").exists() or "veth " in modules, "modprobe veth"),
        (
            "IP forwarding",
            Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1",
            "sysctl -w net.ipv4.ip_forward=1 (openccs sets it when it starts machines)",
        ),
    ]
    return checks


def run_doctor() -> int:
    problems = 0
    print("openccs doctor")
    is_root = os.geteuid() == 0
    print(f"  [{'ok' if is_root else '!!'}] running as root" + ("" if is_root else ": run as root"))
    problems += not is_root
    for name, ok, fix in _kernel_checks():
        print(f"  [{'ok' if ok else '!!'}] {name}" + ("" if ok else f": {fix}"))
        problems += not ok
    missing = []
    for pkg, why in PACKAGES.items():
        ok = _installed(pkg)
        print(f"  [{'ok' if ok else '!!'}] package {pkg} ({why})")
        if not ok:
            missing.append(pkg)
    if missing:
        problems += len(missing)
        print(
            "\nInstall what is missing:\n  apt-get update && apt-get install -y "
            + " ".join(missing)
        )
    print("\nall good" if not problems else f"\n{problems} problem(s)")
    return 0 if not problems else 1
