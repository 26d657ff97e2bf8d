"""Supervision of the `docker-registry` process (Docker Distribution).

openccs writes the registry's configuration into the data directory and starts one
registry. The pidfile lets a restarted openccs (even after `kill -9`) find the running
registry again and reuse it, so two are never started; a registry whose configuration (or
certificate) no longer matches is replaced. On a clean shutdown of openccs the registry is
stopped too: it depends on openccs for every token and notification, so keeping it alone is
useless. It listens on loopback only; its certificate also names the VPC gateway addresses,
where `forward.Forwarder` exposes it to machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from openccs.log import get_logger, log_event
from openccs.ports import free_port
from openccs.tls import issue_certificate

from .jwt import ISSUER, SERVICE

log = get_logger("openccs.registry.daemon")

BINARY = "docker-registry"


def _read_secret(path: Path) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


@dataclass
class Endpoints:
    """Where the registry reaches openccs: the token realm and the notification URL."""

    realm: str
    notify_url: str


class RegistryDaemon:
    def __init__(self, directory: Path, tls_dir: Path, addresses: list[str]) -> None:
        self.dir = directory
        self.tls_dir = tls_dir
        self.addresses = addresses
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.storage = self.dir / "storage"
        self.config_path = self.dir / "config.yml"
        self.pidfile = self.dir / "registry.pid"
        self.log_path = self.dir / "registry.log"
        self.notify_secret = _read_secret(self.dir / "notify.secret")
        self._http_secret = _read_secret(self.dir / "http.secret")
        self.port = self._port()
        self.cert, self.key = self._certificate()
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        # The digest of what the running registry was started with (config and certificate).
        self.digest: str | None = None

    # --- addresses and TLS -------------------------------------------------------------
    def _port(self) -> int:
        path = self.dir / "port"
        if path.exists():
            return int(path.read_text())
        port = free_port(self.addresses[0])
        path.write_text(str(port))
        return port

    @property
    def host(self) -> str:
        """The address clients use for images: `HOST:PORT` (the first listen address)."""
        return f"{self.addresses[0]}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca(self) -> Path:
        return self.tls_dir / "ca.pem"

    def set_addresses(self, addresses: list[str]) -> bool:
        """Serve these addresses (loopback first): True when the certificate was re-issued
        (the registry then needs a restart to present it)."""
        if sorted(addresses) == sorted(self.addresses) and addresses[0] == self.addresses[0]:
            return False
        self.addresses = addresses
        old = self.cert.read_bytes() if self.cert.exists() else b""
        self.cert, self.key = self._certificate()
        return self.cert.read_bytes() != old

    def _certificate(self) -> tuple[Path, Path]:
        wanted = ",".join(sorted(self.addresses))
        marker = self.dir / "tls.names"
        cert, key = self.tls_dir / "registry.pem", self.tls_dir / "registry-key.pem"
        if cert.exists() and key.exists() and marker.exists() and marker.read_text() == wanted:
            return cert, key
        cert, key = issue_certificate(self.tls_dir, "registry", ["localhost"], self.addresses)
        marker.write_text(wanted)
        return cert, key

    # --- configuration -----------------------------------------------------------------
    def config(self, endpoints: Endpoints, token_bundle: Path, readonly: bool) -> dict[str, Any]:
        # Loopback only: listening on every address (Distribution takes one) would expose
        # it beyond the host, on IPv6 too (Go listens dual-stack on 0.0.0.0).
        addr = self.host
        return {
            "version": 0.1,
            "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"readonly": {"enabled": readonly}},
            },
            "http": {
                "addr": addr,
                "secret": self._http_secret,
                "draintimeout": "5s",
                "tls": {"certificate": str(self.cert), "key": str(self.key)},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {
                "token": {
                    "realm": endpoints.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(token_bundle),
                }
            },
            "notifications": {
                "events": {"includereferences": True},
                "endpoints": [
                    {
                        "name": "openccs",
                        "url": endpoints.notify_url,
                        "headers": {"Authorization": [f"Bearer {self.notify_secret}"]},
                        "timeout": "5s",
                        "threshold": 5,
                        "backoff": "1s",
                        "ignoredmediatypes": ["application/octet-stream"],
                    }
                ],
            },
        }

    def _write_config(self, config: dict[str, Any]) -> None:
        # JSON is YAML: the registry reads it as its configuration file.
        text = json.dumps(config, indent=2)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def desired_digest(
        self, endpoints: Endpoints, token_bundle: Path, readonly: bool = False
    ) -> str:
        """What a registry started now would run with: its configuration and the certificate
        (re-issued in place for new addresses, which the configuration alone does not show)."""
        text = json.dumps(self.config(endpoints, token_bundle, readonly), indent=2)
        return hashlib.sha256(text.encode() + self.cert.read_bytes()).hexdigest()

    # --- process -----------------------------------------------------------------------
    def _running(self) -> tuple[int, str] | None:
        """The registry a previous run left (pid, configuration hash), if it still runs."""
        if not self.pidfile.exists():
            return None
        try:
            state = json.loads(self.pidfile.read_text())
            pid, digest = int(state["pid"]), str(state["config"])
        except (ValueError, KeyError, TypeError):
            return None
        cmd = _cmdline(pid)
        if _alive(pid) and cmd and BINARY in cmd[0] and str(self.config_path) in cmd:
            return pid, digest
        return None

    def start(self, endpoints: Endpoints, token_bundle: Path, readonly: bool = False) -> None:
        """Start the registry, or adopt the one already running with the same configuration."""
        if shutil.which(BINARY) is None:
            raise RuntimeError(f"{BINARY} is not installed (Debian package docker-registry)")
        self.storage.mkdir(exist_ok=True)
        config = self.config(endpoints, token_bundle, readonly)
        digest = self.desired_digest(endpoints, token_bundle, readonly)
        running = self._running()
        if running is not None:
            pid, old = running
            if old == digest:
                self.pid = pid
                self.digest = digest
                log_event(log, "registry adopted", pid=pid, addr=self.host)
                self.wait_ready()
                return
            log_event(log, "registry configuration changed: replacing it", pid=pid)
            self._terminate(pid)
        self._write_config(config)
        out = open(self.log_path, "ab")  # noqa: SIM115 (handed to the child)
        try:
            self._proc = subprocess.Popen(
                [BINARY, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                # Lets notifications reach an HTTPS-only openccs whose CA is ours.
                env={**os.environ, "SSL_CERT_FILE": str(self.ca)},
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: it outlives a killed openccs, which then adopts it.
                start_new_session=True,
            )
        finally:
            out.close()
        self.pid = self._proc.pid
        self.digest = digest
        # Atomically: a reader (a restarted openccs, a test) never sees it half written.
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "config": digest}))
        os.replace(tmp, self.pidfile)
        log_event(log, "registry started", pid=self.pid, addr=self.host, readonly=readonly)
        self.wait_ready()

    def wait_ready(self, timeout: float = 15) -> None:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"{BINARY} exited: {self.log_path.read_text()[-2000:]}")
            try:
                r = httpx.get(f"{self.url}/v2/", verify=ctx, timeout=2)
                if r.status_code == 401:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise RuntimeError(f"{BINARY} did not become ready: {last}")

    def _terminate(self, pid: int, timeout: float = 8) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return
            elif not _alive(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if self._proc is not None and self._proc.pid == pid:
            self._proc.wait()

    def running(self) -> bool:
        if self.pid is None:
            return False
        if self._proc is not None and self._proc.pid == self.pid:
            return self._proc.poll() is None
        return _alive(self.pid)

    def stop(self) -> None:
        if self.pid is None:
            return
        self._terminate(self.pid)
        log_event(log, "registry stopped", pid=self.pid)
        self.pid = None
        self.digest = None
        self._proc = None
        self.pidfile.unlink(missing_ok=True)

    def garbage_collect(self) -> str:
        """Run `garbage-collect --delete-untagged`; the caller keeps the registry read-only."""
        r = subprocess.run(
            [BINARY, "garbage-collect", "--delete-untagged", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise RuntimeError(f"garbage-collect failed: {r.stderr[-2000:] or r.stdout[-2000:]}")
        return r.stdout

    def blob_bytes(self) -> int:
        """Bytes held by the registry's blob store."""
        root = self.storage / "docker" / "registry" / "v2" / "blobs"
        total = 0
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def repository_dir(self, name: str) -> Path:
        return self.storage / "docker" / "registry" / "v2" / "repositories" / name


def sweep_registries(data_dir: Path | None, keep: frozenset[Path] = frozenset()) -> list[str]:
    """Kill the registries a dead openccs left running: the data directory's, or with
    `data_dir` None every registry started from an openccs data directory (its
    configuration file lies in `<data dir>/registry/`, next to `<data dir>/site-id`), or
    from one that was deleted since, except those of the data directories in `keep` (the
    live servers')."""
    from openccs.cloud import procs

    found: list[int] = []
    for pid in procs.all_pids():
        argv = procs.cmdline(pid)
        if not argv or os.path.basename(argv[0]) != BINARY or len(argv) < 3:
            continue
        config = Path(argv[-1])
        owner = config.parent.parent
        if data_dir is not None:
            if owner.resolve() == data_dir.resolve():
                found.append(pid)
        elif (
            config.parts[-2:] == ("registry", "config.yml")
            and ((owner / "site-id").exists() or not config.exists())
            and owner.resolve() not in {k.resolve() for k in keep}
        ):
            # An openccs data directory's registry, or one whose directory is gone.
            found.append(pid)
    killed = procs.kill_now(found)
    for pid in killed:
        log_event(log, "leftover registry killed", pid=pid)
    return [str(p) for p in killed]
