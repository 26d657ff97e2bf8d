"""What node agents ask of a machine's dockerd (Engine API over its unix socket)."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from openccs.cloud import dockerapi
from openccs.cloud.host import CloudError

POD_LABEL = "openccs.pod.uid"


class DockerError(CloudError):
    pass


def image_present(sock: Path, ref: str) -> bool:
    try:
        dockerapi.request(sock, "GET", f"/images/{ref}/json")
        return True
    except CloudError as exc:
        if "answered 404" in exc.message:
            return False
        raise


def pull(sock: Path, ref: str, auth: dict[str, str] | None = None, timeout: float = 300) -> None:
    """Pull `ref`; raise DockerError with the registry's reason when it fails."""
    name, tag = split_ref(ref)
    headers = {}
    if auth:
        headers["X-Registry-Auth"] = base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
    try:
        resp = dockerapi.request(
            sock,
            "POST",
            "/images/create",
            params={"fromImage": name, "tag": tag},
            headers=headers,
            timeout=timeout,
        )
    except CloudError as exc:
        raise DockerError(_short(exc.message)) from None
    # Errors after the start of the pull come inside the progress stream.
    for line in resp.text.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "error" in message:
            raise DockerError(str(message["error"]))


def _short(message: str) -> str:
    return message.split("answered", 1)[-1].strip()[:300]


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; digests stay in the repository part."""
    if "@" in ref:
        return ref, ""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = ref.rpartition(":")
        return repo, tag
    return ref, "latest"


def create(sock: Path, name: str, config: dict[str, Any]) -> str:
    resp = dockerapi.request(sock, "POST", "/containers/create", params={"name": name}, json=config)
    cid: str = resp.json()["Id"]
    return cid


def start(sock: Path, cid: str) -> None:
    dockerapi.request(sock, "POST", f"/containers/{cid}/start")


def inspect(sock: Path, cid: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = dockerapi.request(sock, "GET", f"/containers/{cid}/json").json()
        return data
    except CloudError as exc:
        if "answered 404" in exc.message:
            return None
        raise


def remove(sock: Path, cid: str) -> None:
    try:
        dockerapi.request(sock, "DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})
    except CloudError as exc:
        if "answered 404" not in exc.message:
            raise


def stop(sock: Path, cid: str, grace: int) -> None:
    try:
        dockerapi.request(
            sock, "POST", f"/containers/{cid}/stop", params={"t": str(grace)}, timeout=grace + 30
        )
    except CloudError as exc:
        if "answered 404" not in exc.message and "answered 304" not in exc.message:
            raise


def pod_containers(sock: Path) -> list[dict[str, Any]]:
    resp = dockerapi.request(
        sock,
        "GET",
        "/containers/json",
        params={"all": "1", "filters": json.dumps({"label": [POD_LABEL]})},
    )
    result: list[dict[str, Any]] = resp.json()
    return result


def previous_container(sock: Path, pod_uid: str, name: str, current: str) -> str | None:
    """The pod's last ended run of container `name` other than `current` (the node agent
    keeps the last one for its logs); None when it has not ended once yet. A run created
    and not yet started (a pod's first, before its status says so) is not a previous one."""
    filters = {"label": [f"{POD_LABEL}={pod_uid}", f"openccs.container={name}"]}
    found = dockerapi.request(
        sock, "GET", "/containers/json", params={"all": "1", "filters": json.dumps(filters)}
    ).json()
    found.sort(key=lambda c: int(c["Labels"].get("openccs.restart", "0")), reverse=True)
    for c in found:
        if c["Id"] != current and c["State"] in ("exited", "dead"):
            return str(c["Id"])
    return None


def logs(sock: Path, cid: str, since: int | None = None, tail: int | None = None) -> str:
    """A container's stdout and stderr, in order, as text."""
    params = {"stdout": "1", "stderr": "1"}
    if since is not None:
        params["since"] = str(since)
    if tail is not None:
        params["tail"] = str(tail)
    raw = dockerapi.request(sock, "GET", f"/containers/{cid}/logs", params=params).content
    return demux(raw)


def demux(raw: bytes) -> str:
    """Docker's multiplexed stream (8-byte frame headers) to text; plain text passes."""
    out = bytearray()
    i = 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1 : i + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", raw[i + 4 : i + 8])
        out += raw[i + 8 : i + 8 + size]
        i += 8 + size
    if i == 0:
        return raw.decode(errors="replace")
    return out.decode(errors="replace")


def exec_run(sock: Path, cid: str, cmd: list[str], timeout: float) -> int:
    """Run a command in a running container; its exit code (probes)."""
    resp = dockerapi.request(
        sock,
        "POST",
        f"/containers/{cid}/exec",
        json={"Cmd": cmd, "AttachStdout": True, "AttachStderr": True},
    )
    exec_id = resp.json()["Id"]
    dockerapi.request(
        sock, "POST", f"/exec/{exec_id}/start", json={"Detach": False}, timeout=timeout
    )
    info = dockerapi.request(sock, "GET", f"/exec/{exec_id}/json").json()
    return int(info.get("ExitCode") or 0)


# What a node agent reacts to at once: a container of a pod started, died (exited, killed,
# OOM), changed health or was removed. Everything else waits for the periodic pass.
WATCHED_EVENTS = ("start", "die", "oom", "health_status", "destroy")
EVENTS_IDLE_S = 5.0  # an idle event stream is reopened after this long


def watch_events(
    sock: Path,
    on_event: Callable[[dict[str, Any]], None],
    stopping: Callable[[], bool],
    on_stream: Callable[[bool], None] = lambda _up: None,
) -> None:
    """Follow dockerd's event stream (pod containers only) until `stopping()`, calling
    `on_event` for each event. A broken stream is opened again (events missed meanwhile
    are replayed from the last one seen); a daemon that is down is retried every second.
    An idle stream is reopened every few seconds, so `stopping` is seen in time.

    `on_stream(True)` is called each time a stream is open, `on_stream(False)` each time
    one breaks: an error, a daemon that does not answer, a stream dockerd ended itself (a
    daemon that restarts has forgotten its events, so the replay cannot be trusted). The
    routine reopen of an idle stream is no break: the replay covers the moment between."""
    since = f"{time.time():.9f}"
    filters = json.dumps(
        {"type": ["container"], "event": list(WATCHED_EVENTS), "label": [POD_LABEL]}
    )
    with dockerapi.client(sock, timeout=30.0) as c:
        while not stopping():
            params = {"filters": filters, "since": since}
            timeout = httpx.Timeout(5.0, read=EVENTS_IDLE_S)
            opened = False
            try:
                with c.stream("GET", "/events", params=params, timeout=timeout) as resp:
                    if resp.status_code != 200:
                        raise httpx.TransportError(f"/events answered {resp.status_code}")
                    opened = True
                    on_stream(True)
                    for line in resp.iter_lines():
                        if stopping():
                            return
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        nano = int(event.get("timeNano") or 0) + 1
                        if nano > 1:  # the next stream starts just after this event
                            since = f"{nano // 1_000_000_000}.{nano % 1_000_000_000:09d}"
                        on_event(event)
                on_stream(False)  # dockerd ended the stream: it is stopping
            except httpx.ReadTimeout:
                if not opened:  # no answer at all: a daemon that hangs
                    on_stream(False)
                continue
            except httpx.HTTPError:
                on_stream(False)
                if stopping():
                    return
                time.sleep(1.0)
