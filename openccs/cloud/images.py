"""The offline busybox image: built from the host's busybox-static (no Docker Hub here) and
imported into a machine's dockerd through its Engine API.

* `build_busybox_rootfs(dest) -> Path` — `dest/bin/busybox` plus a symlink per applet.
* `busybox_tar(rootfs) -> bytes` — the root filesystem as a tar archive.
* `import_busybox_image(socket_path, ref, changes=()) -> str` — `docker import` of that tar
  (POST /images/create?fromSrc=-); returns the image id.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from openccs.cloud import dockerapi
from openccs.cloud.host import CloudError
from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.images")

BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))


def busybox_binary() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        if candidate.exists():
            return candidate
    raise CloudError("busybox is not installed (Debian package busybox-static)")


def build_busybox_rootfs(dest: Path) -> Path:
    """A minimal root filesystem: /bin/busybox, its applets as symlinks, and the directories
    a container expects. Idempotent."""
    binary = busybox_binary()
    applets = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not applets:
        raise CloudError(f"{binary} --list printed no applets: is it busybox-static?")
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for d in ("etc", "tmp", "proc", "sys", "dev", "root", "var/www"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    shutil.copy2(binary, bin_dir / "busybox")
    for applet in applets:
        link = bin_dir / applet
        if applet != "busybox" and not link.is_symlink():
            link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    return dest


def busybox_tar(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def import_busybox_image(socket_path: Path, ref: str, changes: Sequence[str] = ()) -> str:
    """Import the busybox image into the dockerd at `socket_path` as `ref` (repo:tag)."""
    repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    with tempfile.TemporaryDirectory(prefix="openccs-busybox-") as tmp:
        body = busybox_tar(build_busybox_rootfs(Path(tmp) / "rootfs"))
    params: list[tuple[str, str]] = [("fromSrc", "-"), ("repo", repo), ("tag", tag)]
    params.extend(("changes", c) for c in changes)
    resp = dockerapi.request(
        socket_path, "POST", "/images/create", params=params, content=body,
        headers={"Content-Type": "application/x-tar"}, timeout=120.0,
    )  # fmt: skip
    image_id = ""
    # The answer is a stream of JSON progress messages; the last status holds the id.
    for line in resp.text.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "error" in message:
            raise CloudError(f"importing {ref} into {socket_path} failed: {message['error']}")
        image_id = message.get("status", image_id)
    log_event(log, "image imported", socket=str(socket_path), ref=ref, image=image_id)
    return image_id
