"""Cluster DNS: one dnsmasq per cluster answering `<service>.<namespace>.svc.cluster.local`
(and, through the pods' search domains, `<service>` and `<service>.<namespace>`) with the
service's ClusterIP. Other names go to the host's resolvers.

dnsmasq listens on the cluster's DNS address (the second address of its service range),
kept on the VPC's bridge, which every machine reaches through its subnet gateway. Its files
live in the site's runtime directory, so `openccs sweep` finds a dnsmasq left behind.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from openccs.cloud import host, naming, procs
from openccs.log import get_logger, log_event

log = get_logger("openccs.engine.dns")

DOMAIN = "cluster.local"
# Seconds between checks that an unchanged cluster's dnsmasq and address are still there.
RECHECK_EVERY = 15.0


def dns_ip(service_cidr: str) -> str:
    return str(ipaddress.ip_network(service_cidr).network_address + 2)


def search_domains(namespace: str) -> list[str]:
    return [f"{namespace}.svc.{DOMAIN}", f"svc.{DOMAIN}", DOMAIN]


class ClusterDns:
    def __init__(self, site: str, runtime_base: Path = naming.DEFAULT_RUNTIME_BASE) -> None:
        self.site = site
        self.base = naming.site_runtime_dir(site, runtime_base)
        self._lock = threading.Lock()
        # What was last written and checked, so an idle pass costs no file or process work.
        self._served: dict[str, tuple[str, float]] = {}

    def _dir(self, cluster_id: str) -> Path:
        return self.base / f"dns-{cluster_id}"

    def _pid(self, cluster_id: str) -> int | None:
        try:
            pid = int((self._dir(cluster_id) / "dnsmasq.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        argv = procs.cmdline(pid)
        if procs.alive(pid) and argv and str(self._dir(cluster_id)) in " ".join(argv):
            return pid
        return None

    def sync(self, cluster_id: str, vpc_id: str, address: str, records: dict[str, str]) -> None:
        """Serve `records` (FQDN -> IP) on `address`; start dnsmasq or make it re-read."""
        d = self._dir(cluster_id)
        text = "".join(f"{ip} {name}\n" for name, ip in sorted(records.items()))
        last = self._served.get(cluster_id)
        if last is not None and last[0] == text and time.monotonic() - last[1] < RECHECK_EVERY:
            return
        d.mkdir(parents=True, exist_ok=True)
        hosts = d / "hosts"
        with self._lock:
            changed = not hosts.exists() or hosts.read_text() != text
            if changed:
                tmp = d / "hosts.tmp"
                tmp.write_text(text)
                os.replace(tmp, hosts)
            bridge = naming.bridge(self.site, vpc_id)
            if (
                f" {address}/32 "
                not in host.run(
                    ["ip", "-4", "-o", "addr", "show", "dev", bridge], quiet=True
                ).stdout
            ):
                host.run(["ip", "addr", "replace", f"{address}/32", "dev", bridge])
            pid = self._pid(cluster_id)
            if pid is None:
                self._start(cluster_id, address)
            elif changed:
                os.kill(pid, signal.SIGHUP)
            self._served[cluster_id] = (text, time.monotonic())

    def _start(self, cluster_id: str, address: str) -> None:
        d = self._dir(cluster_id)
        argv = [
            "dnsmasq",
            "--conf-file=/dev/null",
            f"--pid-file={d / 'dnsmasq.pid'}",
            f"--listen-address={address}",
            "--bind-interfaces",
            "--no-hosts",
            f"--addn-hosts={d / 'hosts'}",
            "--user=root",
            "--cache-size=0",
            f"--log-facility={d / 'dnsmasq.log'}",
        ]
        subprocess.run(argv, check=True, capture_output=True, timeout=10)
        for _ in range(50):
            if self._pid(cluster_id):
                break
            time.sleep(0.05)
        log_event(log, "cluster dns started", cluster=cluster_id, address=address)

    def stop(self, cluster_id: str, vpc_id: str, address: str) -> None:
        self._served.pop(cluster_id, None)
        pid = self._pid(cluster_id)
        if pid is not None:
            procs.terminate([pid], timeout=5, what=f"dnsmasq of {cluster_id}")
        bridge = naming.bridge(self.site, vpc_id)
        if host.link_exists(bridge):
            host.run(["ip", "addr", "del", f"{address}/32", "dev", bridge], check=False)
        for f in self._dir(cluster_id).glob("*"):
            f.unlink(missing_ok=True)
        if self._dir(cluster_id).exists():
            self._dir(cluster_id).rmdir()
