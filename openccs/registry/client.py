"""openccs's own client of the registry's HTTP API, with tokens it signs for itself."""

from __future__ import annotations

import json
import shutil
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .jwt import TokenSigner

# The subject of openccs's own tokens; its requests are not counted as user pulls.
INTERNAL_SUBJECT = "openccs-internal"

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)


class RegistryError(Exception):
    pass


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class RegistryClient:
    def __init__(self, url: str, ca: Path, signer: TokenSigner) -> None:
        self.url = url
        self.signer = signer
        self._http = httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(ca)), timeout=60
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _token(self, scopes: tuple[tuple[str, str], ...]) -> str:
        key = repr(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        access = [{"type": t, "name": n, "actions": ["*"]} for t, n in scopes]
        token, _ = self.signer.sign(INTERNAL_SUBJECT, access, ttl=300)
        with self._lock:
            if len(self._tokens) > 1000:
                self._tokens.clear()
            self._tokens[key] = (token, time.monotonic() + 240)
        return token

    def _request(
        self,
        method: str,
        path: str,
        scopes: tuple[tuple[str, str], ...],
        **kw: Any,
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        headers["Authorization"] = f"Bearer {self._token(scopes)}"
        try:
            return self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry unreachable: {exc}") from exc

    @staticmethod
    def _repo(name: str) -> tuple[tuple[str, str], ...]:
        return (("repository", name),)

    def catalog(self) -> list[str]:
        names: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            r = self._request("GET", path, (("registry", "catalog"),))
            if r.status_code != 200:
                raise RegistryError(f"catalog: HTTP {r.status_code} {r.text[:200]}")
            names.extend(r.json().get("repositories") or [])
            link = r.headers.get("link", "")
            path = link.split(";")[0].strip("<> ") if link else ""
        return names

    def tags(self, repo: str) -> list[str]:
        r = self._request("GET", f"/v2/{repo}/tags/list", self._repo(repo))
        if r.status_code == 404:
            return []
        if r.status_code != 200:
            raise RegistryError(f"tags of {repo}: HTTP {r.status_code} {r.text[:200]}")
        return list(r.json().get("tags") or [])

    def head_manifest(self, repo: str, ref: str) -> str | None:
        r = self._request(
            "HEAD", f"/v2/{repo}/manifests/{ref}", self._repo(repo), headers={"Accept": ACCEPT}
        )
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RegistryError(f"manifest {repo}:{ref}: HTTP {r.status_code}")
        return r.headers["docker-content-digest"]

    def get_manifest(self, repo: str, ref: str) -> Manifest | None:
        r = self._request(
            "GET", f"/v2/{repo}/manifests/{ref}", self._repo(repo), headers={"Accept": ACCEPT}
        )
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RegistryError(f"manifest {repo}:{ref}: HTTP {r.status_code} {r.text[:200]}")
        media_type = r.headers.get("content-type", "").split(";")[0]
        return Manifest(r.headers["docker-content-digest"], media_type, r.content)

    def get_blob_json(self, repo: str, digest: str) -> dict[str, Any]:
        r = self._request(
            "GET", f"/v2/{repo}/blobs/{digest}", self._repo(repo), follow_redirects=True
        )
        if r.status_code != 200:
            raise RegistryError(f"blob {repo}@{digest}: HTTP {r.status_code}")
        data: dict[str, Any] = r.json()
        return data

    def mount_blob(self, dest: str, digest: str, source: str) -> None:
        r = self._request(
            "POST",
            f"/v2/{dest}/blobs/uploads/",
            (("repository", dest), ("repository", source)),
            params={"mount": digest, "from": source},
        )
        if r.status_code != 201:
            raise RegistryError(f"mount of {digest} into {dest}: HTTP {r.status_code}")

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> str:
        r = self._request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            self._repo(repo),
            content=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )
        if r.status_code != 201:
            raise RegistryError(f"put manifest {repo}:{ref}: HTTP {r.status_code} {r.text[:300]}")
        return r.headers.get("docker-content-digest", manifest.digest)

    def delete_manifest(self, repo: str, digest: str) -> None:
        r = self._request("DELETE", f"/v2/{repo}/manifests/{digest}", self._repo(repo))
        if r.status_code not in (202, 404):
            raise RegistryError(f"delete {repo}@{digest}: HTTP {r.status_code} {r.text[:200]}")


def untag(repository_dir: Path, tag: str) -> None:
    """Remove one tag, leaving other tags of the same manifest alone.

    Distribution 2.8 deletes manifests by digest only (every tag on it goes with it); a tag
    alone is removed in the storage, as the registry's own untag does.
    """
    shutil.rmtree(repository_dir / "_manifests" / "tags" / tag, ignore_errors=True)
