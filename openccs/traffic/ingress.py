"""HTTP(S) ingress: the document's rules checked, rendered as one nginx configuration per
cluster, and that nginx supervised.

Each ingress has its own VIP (a load balancer row); its rules become server blocks on
`VIP:LoadBalancePort`, one per domain, with a location per url, proxying to the backend
service's ClusterIP (the host's service rules balance over ready pods). Requests for a host
no rule names get 404 from a default server. A change is applied with nginx's graceful
reload: old workers finish the requests they have, so no connection is dropped.

The nginx runs as a daemon (it outlives an openccs restart, as pods do) with its files in
the site's runtime directory, `ingress-<cluster>/`; `openccs sweep` kills its process group.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openccs.cloud import procs
from openccs.errors import invalid_parameter
from openccs.log import get_logger, log_event

log = get_logger("openccs.traffic.ingress")

MODIFIERS = ("=", "~*", "~", "^~")
PLAIN_URL = re.compile(r"^/[A-Za-z0-9_\-.=?/]*$")
PLAIN_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?$")
# What may appear in a regular expression: no blanks, quotes, braces or semicolons, which
# would end the nginx directive it is written into.
REGEX_SAFE = re.compile(r"^[^\s\"'{};\\]*(?:\\[^\s][^\s\"'{};\\]*)*$")


def split_url(url: str) -> tuple[str, str]:
    """(modifier, path or expression) of a rule's url: "~* \\.png$" -> ("~*", "\\.png$")."""
    for mod in ("~*", "^~", "=", "~"):
        if url.startswith(mod):
            return mod, url[len(mod) :].strip()
    return "", url


@dataclass(frozen=True)
class IngressRule:
    """One rule of an ingress, typed: requests for `domain` and `url` on the balancer's
    `lb_port` go to `service_port` of the service `service_name` in the ingress's
    namespace. Stored (and answered) in the document's shape."""

    url: str
    domain: str
    protocol: str  # http or https
    service_name: str
    service_port: int
    lb_port: int

    @classmethod
    def from_v2(cls, rule: Mapping[str, Any]) -> IngressRule:
        return cls(
            str(rule["url"]),
            str(rule["domain"]),
            str(rule["protocol"]),
            str(rule["serviceName"]),
            int(rule["servicePort"]),
            int(rule["LoadBalancePort"]),
        )

    def to_v2(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "domain": self.domain,
            "protocol": self.protocol,
            "serviceName": self.service_name,
            "servicePort": self.service_port,
            "LoadBalancePort": self.lb_port,
        }


def check_rule(rule: IngressRule, where: str) -> None:
    """The document's rules for one rule's url and domain, which are written into nginx's
    configuration (each failing as a 4000 naming the field)."""
    url = rule.url
    if not 1 <= len(url) <= 80:
        raise invalid_parameter(f"{where}.url", "length must be 1 to 80")
    mod, path = split_url(url)
    if not path:
        raise invalid_parameter(f"{where}.url", f"nothing after the modifier {mod!r}")
    if mod in ("~", "~*"):
        if not REGEX_SAFE.match(path):
            raise invalid_parameter(
                f"{where}.url", "a regular expression without blanks, quotes, braces or ';'"
            )
        try:
            re.compile(path)
        except re.error as exc:
            raise invalid_parameter(f"{where}.url", f"not a regular expression: {exc}") from None
    elif not PLAIN_URL.match(path):
        raise invalid_parameter(
            f"{where}.url",
            "a path starting with '/' of letters, digits and _ - . = ? / (or a ~, ~*, ^~ or ="
            " modifier first)",
        )
    domain = rule.domain
    if not 1 <= len(domain) <= 80:
        raise invalid_parameter(f"{where}.domain", "length must be 1 to 80")
    if domain.startswith("~"):
        expr = domain[1:]
        if not expr or not REGEX_SAFE.match(expr):
            raise invalid_parameter(
                f"{where}.domain", "a regular expression without blanks, quotes, braces or ';'"
            )
        try:
            re.compile(expr)
        except re.error as exc:
            raise invalid_parameter(f"{where}.domain", f"not a regular expression: {exc}") from None
    else:
        bare = domain
        if domain.startswith("*."):
            bare = domain[2:]
        elif domain.endswith(".*"):
            bare = domain[:-2]
        if "*" in bare or not PLAIN_DOMAIN.match(bare):
            raise invalid_parameter(
                f"{where}.domain",
                "letters, digits, '-' and '.', with '*' only as the first or last label,"
                " or a regular expression starting with '~'",
            )


@dataclass(frozen=True)
class Route:
    """One location of a server: where it proxies to ("" when the backend is gone)."""

    url: str
    backend: str  # "ip:port" of the service's ClusterIP, or "" (answers 503)


@dataclass(frozen=True)
class Site:
    """One ingress as nginx sees it."""

    key: str  # cluster/namespace/name, for comments
    vip: str
    # (port, protocol) -> domain -> routes
    listeners: dict[tuple[int, str], dict[str, list[Route]]]
    cert: tuple[Path, Path] | None  # certificate chain and key files when https is used


def _quote(value: str) -> str:
    return '"' + value + '"'


def _location(url: str) -> str:
    mod, path = split_url(url)
    if mod in ("~", "~*"):
        return f"{mod} {_quote(path)}"
    return f"{mod} {path}".strip()


def _upstream(backend: str) -> str:
    return "b_" + hashlib.sha1(backend.encode()).hexdigest()[:12]


def render(sites: list[Site], workdir: Path, workers: int = 2) -> str:
    """The whole nginx.conf for a cluster's ingresses."""
    backends = sorted(
        {
            r.backend
            for site in sites
            for domains in site.listeners.values()
            for routes in domains.values()
            for r in routes
            if r.backend
        }
    )
    out = [
        "# Written by openccs: every ingress of one cluster. Do not edit.",
        f"worker_processes {workers};",
        f"pid {workdir / 'nginx.pid'};",
        f"error_log {workdir / 'error.log'} warn;",
        "events { worker_connections 4096; }",
        "http {",
        "  access_log off;",
        "  server_tokens off;",
        "  server_names_hash_bucket_size 128;",
        "  proxy_http_version 1.1;",
        '  proxy_set_header Connection "";',
        "  proxy_set_header Host $host;",
        "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "  proxy_set_header X-Forwarded-Proto $scheme;",
        "  proxy_connect_timeout 5s;",
        "  proxy_next_upstream error timeout;",
    ]
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        out.append(f"  {kind}_temp_path {workdir / 'tmp' / kind};")
    for backend in backends:
        out += [f"  upstream {_upstream(backend)} {{", f"    server {backend};",
                "    keepalive 64;", "  }"]  # fmt: skip
    for site in sites:
        for (port, protocol), domains in sorted(site.listeners.items()):
            ssl = " ssl" if protocol == "https" else ""
            tls: list[str] = []
            if ssl and site.cert is not None:
                tls = [f"    ssl_certificate {site.cert[0]};",
                       f"    ssl_certificate_key {site.cert[1]};"]  # fmt: skip
            out += [
                f"  # {site.key} {protocol} {port}",
                "  server {",
                f"    listen {site.vip}:{port}{ssl} default_server;",
                *tls,
                "    return 404;",
                "  }",
            ]
            for domain, routes in sorted(domains.items()):
                name = _quote(domain) if domain.startswith("~") else domain
                out += ["  server {", f"    listen {site.vip}:{port}{ssl};",
                        f"    server_name {name};", *tls]  # fmt: skip
                for r in routes:
                    out.append(f"    location {_location(r.url)} {{")
                    if r.backend:
                        out.append(f"      proxy_pass http://{_upstream(r.backend)};")
                    else:
                        out.append("      return 503;")
                    out.append("    }")
                out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


class Nginx:
    """The nginx of one cluster's ingresses."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.conf = workdir / "nginx.conf"

    def pid(self) -> int | None:
        try:
            pid = int((self.dir / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        argv = procs.cmdline(pid)
        if procs.alive(pid) and argv and str(self.conf) in " ".join(argv):
            return pid
        return None

    def apply(self, text: str) -> bool:
        """Write the configuration and start nginx or reload it gracefully. True when the
        running nginx serves `text`; False (old configuration kept) when nginx refuses it."""
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        candidate = self.dir / "nginx.conf.new"
        candidate.write_text(text)
        test = subprocess.run(
            ["nginx", "-t", "-q", "-c", str(candidate)], capture_output=True, text=True, timeout=20
        )
        if test.returncode != 0:
            log_event(log, "ingress configuration refused", dir=str(self.dir),
                      error=test.stderr.strip()[-500:])  # fmt: skip
            return False
        os.replace(candidate, self.conf)
        pid = self.pid()
        if pid is None:
            started = subprocess.run(
                ["nginx", "-c", str(self.conf)], capture_output=True, text=True, timeout=20
            )
            if started.returncode != 0:
                log_event(log, "ingress nginx did not start", dir=str(self.dir),
                          error=started.stderr.strip()[-500:])  # fmt: skip
                return False
            for _ in range(100):
                if self.pid() is not None:
                    break
                time.sleep(0.05)
            log_event(log, "ingress nginx started", dir=str(self.dir), pid=self.pid())
        else:
            os.kill(pid, signal.SIGHUP)
            log_event(log, "ingress nginx reloaded", dir=str(self.dir), pid=pid)
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGQUIT)  # graceful: finish the requests in flight
            for _ in range(100):
                if not procs.alive(pid):
                    break
                time.sleep(0.05)
            kill_group(pid)
            log_event(log, "ingress nginx stopped", dir=str(self.dir))
        for f in sorted(self.dir.rglob("*"), reverse=True):
            if f.is_dir():
                f.rmdir()
            else:
                f.unlink(missing_ok=True)
        if self.dir.exists():
            self.dir.rmdir()


def kill_group(pid: int) -> None:
    """Kill a daemonized nginx master and its workers (its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def sweep_dir(runtime_dir: Path) -> list[str]:
    """Kill every ingress nginx whose files are under a site's runtime directory."""
    killed = []
    for pidfile in runtime_dir.glob("ingress-*/nginx.pid"):
        nginx = Nginx(pidfile.parent)
        pid = nginx.pid()
        if pid is not None:
            kill_group(pid)
            killed.append(f"{pid} nginx {pidfile.parent.name}")
    return killed
