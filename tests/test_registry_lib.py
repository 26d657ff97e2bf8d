"""Helpers of the registry tests (no tests here): the registry of a test server, logins,
images built offline, and skopeo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openccs.registry.images import Built, File, busybox_image

from .conftest import Account, Server

PASSWORD = "Secr3t-pass"


@dataclass
class Registry:
    server: Server
    host: str
    certs: Path

    def ref(self, image: str) -> str:
        return f"docker://{self.host}/{image}"


def registry_of(server: Server) -> Registry:
    port = (server.data_dir / "registry" / "port").read_text().strip()
    certs = server.data_dir.parent / "skopeo-certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(server.ca, certs / "ca.crt")
    return Registry(server, f"127.0.0.1:{port}", certs)


def call_ok(server: Server, account: Account | None, action: str, **params: Any) -> Any:
    res = server.client(account).call(action, params)
    assert res["code"] == 0, (action, res)
    return res["data"]


def login(server: Server, account: Account, password: str = PASSWORD) -> str:
    """Register the account's registry password; returns `uin:password` for skopeo."""
    call_ok(server, account, "RegisterRepositoryAccountNew", password=password)
    return f"{account.uin}:{password}"


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)


def push(
    reg: Registry, built: Built, image: str, creds: str | None
) -> subprocess.CompletedProcess[str]:
    args = ["copy", "--dest-cert-dir", str(reg.certs)]
    args += ["--dest-creds", creds] if creds else ["--dest-no-creds"]
    return skopeo(*args, built.ref, reg.ref(image))


def push_ok(
    reg: Registry, built: Built, image: str, creds: str, account: Account | None = None
) -> None:
    """Push; with `account`, wait until the push notification has indexed the tag."""
    r = push(reg, built, image, creds)
    assert r.returncode == 0, r.stderr
    if account is not None:
        repo, _, tag = image.rpartition(":")

        def indexed() -> bool:
            res = reg.server.client(account).call("GetTagList", {"reponame": repo, "tag": tag})
            infos = res.get("data", {}).get("tagInfo", []) if res["code"] == 0 else []
            return any(t["tagName"] == tag and t["tagId"] == built.manifest_digest for t in infos)

        wait_for(indexed, what=f"{image} to be indexed")


def inspect_raw(reg: Registry, image: str, creds: str | None) -> subprocess.CompletedProcess[str]:
    args = ["inspect", "--raw", "--cert-dir", str(reg.certs)]
    args += ["--creds", creds] if creds else ["--no-creds"]
    return skopeo(*args, reg.ref(image))


def pull(
    reg: Registry, image: str, creds: str | None, dest: Path
) -> subprocess.CompletedProcess[str]:
    args = ["copy", "--src-cert-dir", str(reg.certs)]
    args += ["--src-creds", creds] if creds else ["--src-no-creds"]
    return skopeo(*args, reg.ref(image), f"oci:{dest}:pulled")


def denied(r: subprocess.CompletedProcess[str]) -> bool:
    text = r.stderr.lower()
    return r.returncode != 0 and ("denied" in text or "unauthorized" in text)


def wait_for(fn: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def tags(server: Server, account: Account, repo: str) -> dict[str, dict[str, Any]]:
    data = call_ok(server, account, "GetTagList", reponame=repo, limit=100)
    return {t["tagName"]: t for t in data["tagInfo"]}


def wait_tags(server: Server, account: Account, repo: str, names: set[str]) -> dict[str, Any]:
    return wait_for(
        lambda: (t := tags(server, account, repo)) and set(t) == names and t,
        what=f"tags {sorted(names)} of {repo}",
    )


def tagged_image(workdir: Path, tag: str, **spec: Any) -> Built:
    """A busybox image whose second layer says `tag` (distinct digests per tag)."""
    return busybox_image(
        workdir / f"img-{tag}",
        tag,
        extra=[File("etc/image-tag", tag.encode() + b"\n"), File("www/index.html", tag.encode())],
        **spec,
    )


def registry_pid(server: Server) -> int | None:
    path = server.data_dir / "registry" / "registry.pid"
    if not path.exists():
        return None
    return int(json.loads(path.read_text())["pid"])


def kill_registry(server: Server) -> None:
    """Clean-up after tests that leave a registry without its openccs."""
    pid = registry_pid(server)
    if pid is None:
        return
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(server.data_dir).encode() in cmd:
        os.kill(pid, signal.SIGKILL)


def tls(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca))
