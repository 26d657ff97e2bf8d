"""Images built offline: an OCI image layout written from files, without Docker or a network.

`busybox_image` makes a small image from the host's busybox-static (the pause and test images
of openccs); `random_image` makes one of a given size (benchmarks, garbage-collection tests).
Push them with `skopeo copy oci:DIR:TAG docker://HOST/NS/NAME:TAG`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "ls", "cat", "echo", "sleep", "httpd", "wget", "env", "mkdir", "rm", "ps", "true",
    "false", "test", "id", "hostname", "nc", "printf", "grep", "sed", "date", "top", "kill",
)  # fmt: skip

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class File:
    """A file of a layer: content, or a symlink target when `link` is set."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    link: str = ""


@dataclass
class Layer:
    files: list[File]
    gzip: bool = True


@dataclass
class ImageSpec:
    layers: list[Layer]
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    env: list[str] = field(
        default_factory=lambda: [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    )
    entrypoint: list[str] | None = None
    exposed_ports: list[str] = field(default_factory=list)
    author: str = "openccs"
    architecture: str = "amd64"
    os: str = "linux"
    docker_version: str = ""


@dataclass
class Built:
    """An image written to an OCI layout."""

    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    # Bytes of config and layers as stored (what the registry holds).
    size: int

    @property
    def ref(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Layout:
    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.split(":", 1)[1]

    def put(self, data: bytes) -> str:
        digest = _sha(data)
        self.blob_path(digest).write_bytes(data)
        return digest

    def add_index(self, tag: str, digest: str, size: int) -> None:
        index_path = self.path / "index.json"
        index: dict[str, Any] = (
            json.loads(index_path.read_text())
            if index_path.exists()
            else {"schemaVersion": 2, "manifests": []}
        )
        index["manifests"] = [
            m
            for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
        ]
        index["manifests"].append(
            {
                "mediaType": MANIFEST,
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
        index_path.write_text(json.dumps(index))


def _tar(files: list[File]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for f in files:
            parts = f.path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(info)
            info = tarfile.TarInfo(f.path.strip("/"))
            info.mtime = 0
            if f.link:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, f.link, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(f.data), f.mode
                tar.addfile(info, io.BytesIO(f.data))
    return buf.getvalue()


def build(spec: ImageSpec, layout: Path, tag: str) -> Built:
    """Write the image into the OCI layout directory under `tag`."""
    out = _Layout(layout)
    layers: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for layer in spec.layers:
        tar = _tar(layer.files)
        diff_ids.append(_sha(tar))
        blob = gzip.compress(tar, compresslevel=6, mtime=0) if layer.gzip else tar
        layers.append(
            {
                "mediaType": LAYER_GZIP if layer.gzip else LAYER_TAR,
                "digest": out.put(blob),
                "size": len(blob),
            }
        )
    return _finish(out, spec, tag, layers, diff_ids)


def _finish(
    out: _Layout, spec: ImageSpec, tag: str, layers: list[dict[str, Any]], diff_ids: list[str]
) -> Built:
    config: dict[str, Any] = {
        "architecture": spec.architecture,
        "os": spec.os,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "author": spec.author,
        "config": {"Env": spec.env, "Cmd": spec.cmd},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "openccs images.build"} for _ in diff_ids],
    }
    if spec.docker_version:
        config["docker_version"] = spec.docker_version
    if spec.entrypoint is not None:
        config["config"]["Entrypoint"] = spec.entrypoint
    if spec.exposed_ports:
        config["config"]["ExposedPorts"] = {p: {} for p in spec.exposed_ports}
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = out.put(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = out.put(manifest_bytes)
    out.add_index(tag, manifest_digest, len(manifest_bytes))
    size = len(config_bytes) + sum(int(layer["size"]) for layer in layers)
    return Built(out.path, tag, manifest_digest, config_digest, size)


def busybox_files(busybox: Path = BUSYBOX) -> list[File]:
    files = [File("bin/busybox", busybox.read_bytes(), 0o755)]
    files += [File(f"bin/{a}", link="busybox") for a in APPLETS]
    files += [
        File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
        File("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        File("tmp/.keep", b""),
    ]
    return files


def busybox_image(
    layout: Path,
    tag: str,
    extra: list[File] | None = None,
    cmd: list[str] | None = None,
    **spec: Any,
) -> Built:
    """A busybox image; `extra` files go in a second small layer (e.g. what a test serves)."""
    layers = [Layer(busybox_files())]
    if extra:
        layers.append(Layer(extra))
    return build(ImageSpec(layers=layers, cmd=cmd or ["sh"], **spec), layout, tag)


class _HashingWriter(io.RawIOBase):
    """Writes through to a file while hashing what passes (the compressed blob's digest)."""

    def __init__(self, f: io.BufferedWriter) -> None:
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.size += len(view)
        self.f.write(view)
        return len(view)


def random_image(layout: Path, tag: str, size: int, chunk: int = 8 << 20) -> Built:
    """An image with one layer of `size` random bytes, streamed to disk.

    The layer is gzip at level 0 (stored): clients push it as it is, where an uncompressed
    layer would be compressed by skopeo on every push.
    """
    out = _Layout(layout)
    tmp = layout / "layer.tmp"
    tar_hash = hashlib.sha256()
    with open(tmp, "wb") as f:
        sink = _HashingWriter(f)
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=0, mtime=0) as gz:
            header = tarfile.TarInfo("data.bin")
            header.size, header.mode, header.mtime = size, 0o644, int(time.time())
            head = header.tobuf(format=tarfile.PAX_FORMAT)
            left = size
            parts: list[bytes] = [head]
            while parts or left:
                for part in parts:
                    gz.write(part)
                    tar_hash.update(part)
                parts = []
                if left:
                    block = os.urandom(min(chunk, left))
                    left -= len(block)
                    parts = [block]
                    if not left:
                        parts.append(b"\0" * ((-size) % 512) + b"\0" * 1024)
    digest = "sha256:" + sink.hash.hexdigest()
    shutil.move(tmp, out.blob_path(digest))
    layers = [{"mediaType": LAYER_GZIP, "digest": digest, "size": sink.size}]
    return _finish(
        out, ImageSpec(layers=[], cmd=["sh"]), tag, layers, ["sha256:" + tar_hash.hexdigest()]
    )
