"""One cluster's Kubernetes API over HTTPS: discovery, get/list/watch with Tables, logs,
and the writes kubectl makes (mapped onto the API's domain functions, see writes.py).

The routes are data: the discovery documents by path (`DISCOVERY`), the same three resource
paths in every group version, cluster-wide and in a namespace (collection, object,
subresource: `_resource_routes`), and each kind's subresources with their verbs and who
serves them (`SUBRESOURCES`), which discovery lists from the same table. Every route is
authenticated and answers errors as `Status` objects in one place (`_serve`)."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from openccs.engine import docker
from openccs.kube import metrics, proto, streams, writes
from openccs.kube.errors import KubeError, as_kube, not_found
from openccs.kube.kinds import CATEGORY_ALL, K8S_VERSION, KINDS, Kind
from openccs.kube.patch import APPLY
from openccs.kube.selectors import SelectorError, field_selector, label_selector
from openccs.kube.tables import COLUMNS, table_row
from openccs.kube.tracker import Tracker
from openccs.log import get_logger, log_event, log_failure
from openccs.subsystems import need

if TYPE_CHECKING:
    from openccs.server import Services

log = get_logger("openccs.kube")
T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]

POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kube")
WATCH_EVERY = 0.5
GROUPS = {"": "v1", "apps": "v1", "policy": "v1", "autoscaling": "v1"}
# The methods of the routes: what a path does not serve is answered with a Status (by its
# handler, the writes' dispatch or the last route), never the framework's plain 405.
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _json(data: Any, code: int = 200) -> Response:
    return Response(
        json.dumps(data, separators=(",", ":")), status_code=code, media_type="application/json"
    )


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        POOL, functools.partial(ctx.run, fn, *args)
    )


@dataclass(frozen=True)
class Subresource:
    """A kind's subresource: its discovery entry, and who serves it. `serve` names the
    handler of this module that answers `methods` ("logs": a pod's logs; "spdy": exec,
    attach and port-forward are WebSocket routes, so what reaches the HTTP route is a client
    that fell back to SPDY); the writes' dispatch serves the rest."""

    parent: str  # the kind's resource name
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # the subresource's own API group, where it has one
    version: str = ""
    serve: str = ""
    methods: tuple[str, ...] = tuple(METHODS)

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": f"{self.parent}/{self.name}",
            "singularName": "",
            "namespaced": KINDS[self.parent].namespaced,
        }
        if self.group is not None:
            out.update(group=self.group, version=self.version)
        out.update(kind=self.kind, verbs=list(self.verbs))
        return out


SUBRESOURCES: dict[tuple[str, str], Subresource] = {
    (s.parent, s.name): s
    for s in (
        Subresource("pods", "log", "Pod", ("get",), serve="logs", methods=("GET",)),
        *(
            Subresource("pods", name, kind, ("create", "get"), serve="spdy")
            for name, kind in (
                ("exec", "PodExecOptions"),
                ("attach", "PodAttachOptions"),
                ("portforward", "PodPortForwardOptions"),
            )
        ),
        Subresource("pods", "eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource(
            "deployments", "scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"
        ),
    )
}


def _resource_entry(k: Kind) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": k.name,
        "singularName": k.kind.lower(),
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": list(k.verbs),
    }
    if k.short:
        entry["shortNames"] = list(k.short)
    if k.name in CATEGORY_ALL:
        entry["categories"] = ["all"]
    return entry


def resource_list(group: str) -> dict[str, Any]:
    version = GROUPS[group]
    gv = f"{group}/{version}" if group else version
    resources = [_resource_entry(k) for k in KINDS.values() if k.group == group]
    resources += [s.entry() for s in SUBRESOURCES.values() if KINDS[s.parent].group == group]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": K8S_VERSION.split(".")[1],
        "gitVersion": f"{K8S_VERSION}-openccs",
        "platform": "linux/amd64",
        "goVersion": "",
        "compiler": "",
        "buildDate": "",
        "gitCommit": "",
        "gitTreeState": "clean",
    }


def api_group(group: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{GROUPS[group]}", "version": GROUPS[group]}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv],
        "preferredVersion": gv,
    }


def group_list() -> dict[str, Any]:
    groups = []
    for g, v in GROUPS.items():
        if not g:
            continue
        gv = {"groupVersion": f"{g}/{v}", "version": v}
        groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
    groups.append(metrics.group())
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _gv_path(group: str) -> str:
    return f"apis/{group}/{GROUPS[group]}" if group else "api/v1"


def openapi_root() -> dict[str, Any]:
    """The OpenAPI v3 index kubectl reads to learn that PATCH takes `fieldValidation` (the
    server validates what it is given: unknown fields answer 422)."""
    return {
        "paths": {_gv_path(g): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g)}"} for g in GROUPS}
    }


def openapi_doc(gv_path: str) -> dict[str, Any]:
    group = next((g for g in GROUPS if _gv_path(g) == gv_path), None)
    if group is None:
        raise KubeError(404, f"no OpenAPI document for {gv_path}")
    paths: dict[str, Any] = {}
    for k in KINDS.values():
        if k.group != group or "patch" not in k.verbs:
            continue
        prefix = f"/{gv_path}/namespaces/{{namespace}}" if k.namespaced else f"/{gv_path}"
        paths[f"{prefix}/{k.name}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{k.kind}",
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": k.group,
                    "kind": k.kind,
                    "version": k.version,
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "openccs", "version": K8S_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }


# The discovery documents, by path.
DISCOVERY: dict[str, Callable[[], dict[str, Any]]] = {
    "/version": version_info,
    "/api": lambda: {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": group_list,
    "/api/v1": functools.partial(resource_list, ""),
    "/openapi/v3": openapi_root,
    f"/apis/{metrics.GROUP}": lambda: {"kind": "APIGroup", "apiVersion": "v1", **metrics.group()},
    f"/apis/{metrics.GROUP_VERSION}": metrics.resource_list,
    **{f"/apis/{g}": functools.partial(api_group, g) for g in GROUPS if g},
    **{f"/apis/{g}/{v}": functools.partial(resource_list, g) for g, v in GROUPS.items() if g},
}
HEALTH = ("/healthz", "/livez", "/readyz")


def _no_route(request: Request) -> KubeError:
    return KubeError(404, f"the server could not find the requested resource ({request.url.path})")


class _NoTrailingSlash:
    """The app, where a path with a trailing slash is the path without it."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = {**scope, "path": scope["path"].rstrip("/") or "/"}
        await self.app(scope, receive, send)


class ClusterApi:
    """The Kubernetes API of one cluster (one app for all its listeners)."""

    def __init__(self, services: Services, cluster_id: str, account_id: int, secret: str):
        self.services = services
        self.cluster_id = cluster_id
        self.account_id = account_id
        self.secret = secret
        self.tracker = Tracker(services.store, cluster_id)
        self.closing = False
        self.app = _NoTrailingSlash(Starlette(routes=self._routes()))

    # -- the routes -------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        def answer(fn: Callable[[], dict[str, Any]]) -> Endpoint:
            async def endpoint(_: Request) -> Response:
                return _json(fn())

            return endpoint

        async def health(_: Request) -> Response:
            return Response("ok", media_type="text/plain")

        async def openapi(request: Request) -> Response:
            return _json(openapi_doc(request.path_params["gv"]))

        async def nowhere(request: Request) -> Response:
            raise _no_route(request)

        routes: list[BaseRoute] = [
            WebSocketRoute("/api/v1/namespaces/{namespace}/pods/{name}/{action}", self.stream),
            *(
                Route(path, self._guard(answer(fn)), methods=METHODS)
                for path, fn in DISCOVERY.items()
            ),
            *(Route(path, self._guard(health), methods=METHODS) for path in HEALTH),
            Route("/openapi/v3/{gv:path}", self._guard(openapi), methods=METHODS),
            Route(
                f"/apis/{metrics.GROUP_VERSION}/{{rest:path}}",
                self._guard(self._metric),
                methods=["GET"],
            ),
            *self._resource_routes(),
            Route("/{path:path}", self._guard(nowhere), methods=METHODS),
        ]
        return routes

    def _resource_routes(self) -> list[BaseRoute]:
        """In each group version, in a namespace and then cluster-wide: a collection, an
        object, and an object's subresource. The order matters: `namespaces/{ns}/pods` is a
        namespace's pods, not a subresource of the Namespace `{ns}` (which is
        `namespaces/{ns}` alone)."""
        routes: list[BaseRoute] = []
        for group in GROUPS:
            prefix = "/" + _gv_path(group)
            for base in (f"{prefix}/namespaces/{{namespace}}", prefix):
                for path, serve in (
                    ("/{resource}", self._collection),
                    ("/{resource}/{name}", self._object),
                    ("/{resource}/{name}/{sub:path}", self._subresource),
                ):
                    endpoint = functools.partial(serve, group)
                    routes.append(Route(base + path, self._guard(endpoint), methods=METHODS))
        return routes

    def _guard(self, serve: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self._serve(request, serve)

        return endpoint

    # -- authentication ---------------------------------------------------------------
    def _authenticated(self, request: Request | WebSocket) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        given = ""
        if scheme.lower() == "bearer":
            given = value.strip()
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            if user != "admin":
                return False
            given = password
        return bool(given) and hmac.compare_digest(given.encode(), self.secret.encode())

    # -- dispatch ---------------------------------------------------------------------
    async def stream(self, ws: WebSocket) -> None:
        """exec, attach and port-forward (WebSocket); refused before the upgrade without
        credentials."""
        p = ws.path_params
        log_event(log, "kube stream", cluster=self.cluster_id, path=ws.url.path, action=p["action"])
        if not self._authenticated(ws):
            await ws.close(code=1008, reason="Unauthorized")
            return
        if p["action"] in ("exec", "attach"):
            await streams.serve_command(self, ws, p["namespace"], p["name"], p["action"])
        elif p["action"] == "portforward":
            await streams.serve_port_forward(self, ws, p["namespace"], p["name"])
        else:
            await ws.close(code=1008, reason=f"no stream {p['action']}")

    async def _serve(self, request: Request, serve: Endpoint) -> Response:
        """Authentication, the answer, errors as Status objects, and the request's log line."""
        started = time.perf_counter()
        code = 200
        try:
            if not self._authenticated(request):
                raise KubeError(401, "Unauthorized")
            resp = await serve(request)
            code = resp.status_code
            return resp
        except ClientDisconnect:
            # The client went away (or was timed out) before its request was whole.
            code = 499
            log_event(log, "kube client disconnected", cluster=self.cluster_id)
            return Response(status_code=400)
        except Exception as exc:
            err = as_kube(exc)
            if err is None:
                log_failure(log, "kube api error", path=request.url.path)
                err = KubeError(500, "internal error; see the server log")
            code = err.code
            return _json(err.status(), err.code)
        finally:
            log_event(
                log,
                "kube request",
                cluster=self.cluster_id,
                method=request.method,
                path=request.url.path,
                code=code,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _kind(self, request: Request, group: str) -> tuple[Kind, str]:
        """The kind a resource path names in this group, and its namespace ("" for all)."""
        kind = KINDS.get(request.path_params["resource"])
        namespace = request.path_params.get("namespace", "")
        if kind is None or kind.group != group or (namespace and not kind.namespaced):
            raise _no_route(request)
        return kind, namespace

    async def _collection(self, group: str, request: Request) -> Response:
        kind, namespace = self._kind(request, group)
        if request.method == "GET":
            if request.query_params.get("watch") in ("1", "true", "True"):
                return await self._watch(request, kind, namespace)
            return await self._list(request, kind, namespace)
        return await self._write(request, kind, namespace, "", "")

    async def _object(self, group: str, request: Request) -> Response:
        kind, namespace = self._kind(request, group)
        return await self._write(request, kind, namespace, request.path_params["name"], "")

    async def _subresource(self, group: str, request: Request) -> Response:
        kind, namespace = self._kind(request, group)
        name, sub = request.path_params["name"], request.path_params["sub"]
        found = SUBRESOURCES.get((kind.name, sub))
        if found is not None and request.method in found.methods:
            if found.serve == "logs":
                return await self._logs(request, namespace, name)
            if found.serve == "spdy":
                raise KubeError(400, streams.SPDY_ONLY)
        return await self._write(request, kind, namespace, name, sub)

    async def _write(
        self, request: Request, kind: Kind, namespace: str, name: str, sub: str
    ) -> Response:
        """Everything but lists, watches and logs: the writes' dispatch (a GET of one
        object too)."""
        method = request.method
        body: Any = None
        if method in ("POST", "PUT", "PATCH"):
            raw = await request.body()
            body = _body(raw, request.headers.get("content-type", ""), kind, sub)
        ctype = request.headers.get("content-type", "application/json")
        if method == "DELETE":  # DeleteOptions (dryRun) may come in the body
            body = _delete_options(await request.body())
        opts = writes.Options.from_query(
            request.query_params, request.headers.get("user-agent", ""), body
        )
        result = await in_thread(
            writes.dispatch, self, method, kind, namespace, name, sub, body, ctype, opts
        )
        if isinstance(result, Response):
            return result
        if method == "GET" and not sub and _wants_table(request):
            rv = result["metadata"].get("resourceVersion", "")
            return _json(self._table(kind, [result], rv, request))
        code = 201 if (method == "POST" and not sub) or opts.outcome.get("created") else 200
        return _json(result, code)

    # -- reads ------------------------------------------------------------------------
    async def _metric(self, request: Request) -> Response:
        rest = request.path_params["rest"].split("/")
        return _json(await in_thread(self._metrics, rest, request))

    def _metrics(self, rest: list[str], request: Request) -> dict[str, Any]:
        q = request.query_params
        try:
            lsel, fsel = (
                label_selector(q.get("labelSelector")),
                field_selector(q.get("fieldSelector")),
            )
        except SelectorError as exc:
            raise KubeError(400, str(exc)) from None

        def objects(kind: str) -> list[dict[str, Any]]:
            self.tracker.refresh({kind})
            return self.tracker.objects(kind)[0]

        sampler = need(self.services.subsystems.monitor, "monitor").sampler
        return metrics.answer(
            sampler, self.cluster_id, rest, objects, lambda o: lsel(o) and fsel(o)
        )

    def _matching(
        self, kind: Kind, namespace: str, request: Request
    ) -> tuple[list[dict[str, Any]], str, Callable[[dict[str, Any]], bool]]:
        q = request.query_params
        try:
            lsel, fsel = (
                label_selector(q.get("labelSelector")),
                field_selector(q.get("fieldSelector"), kind.name),
            )
        except SelectorError as exc:
            raise KubeError(400, str(exc)) from None

        def keep(o: dict[str, Any]) -> bool:
            if namespace and o["metadata"].get("namespace") != namespace:
                return False
            return lsel(o) and fsel(o)

        self.tracker.refresh({kind.name}, max_age=0.0)
        objs, rv = self.tracker.objects(kind.name)
        return [o for o in objs if keep(o)], rv, keep

    async def _list(self, request: Request, kind: Kind, namespace: str) -> Response:
        objs, rv, _ = await in_thread(self._matching, kind, namespace, request)
        objs.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if kind.name == "events":
            objs.sort(key=lambda o: o.get("lastTimestamp") or "")
        if _wants_table(request):
            return _json(self._table(kind, objs, rv, request))
        return _json(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": rv},
                "items": objs,
            }
        )

    def _table(
        self, kind: Kind, objs: list[dict[str, Any]], rv: str, request: Request
    ) -> dict[str, Any]:
        include = request.query_params.get("includeObject", "Metadata")
        now = self.tracker.now or datetime.now(UTC).replace(tzinfo=None)
        rows = []
        for o in objs:
            row: dict[str, Any] = {"cells": table_row(kind.name, o, now)}
            if include == "Object":
                row["object"] = o
            elif include != "None":
                row["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": COLUMNS[kind.name],
            "rows": rows,
        }

    def get_object(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        self.tracker.refresh({kind.name})
        obj = self.tracker.get(kind.name, namespace if kind.namespaced else "", name)
        if obj is None:
            raise not_found(kind.name, name, kind.group)
        return obj

    async def _watch(self, request: Request, kind: Kind, namespace: str) -> Response:
        q = request.query_params
        rv_text = q.get("resourceVersion", "")
        table = _wants_table(request)
        timeout = float(q.get("timeoutSeconds") or 1800)
        objs, current_rv, keep = await in_thread(self._matching, kind, namespace, request)
        if rv_text in ("", "0"):
            initial = [("ADDED", o) for o in objs]
            last = int(current_rv)
        else:
            try:
                last = int(rv_text)
            except ValueError:
                raise KubeError(400, f"invalid resourceVersion {rv_text!r}") from None
            changes = self.tracker.since(kind.name, last)
            if changes is None:
                raise KubeError(410, f"too old resource version: {last}", "Expired")
            initial = [(t, o) for _, t, o in changes if keep(o)]
            if changes:
                last = changes[-1][0]

        def frame(typ: str, obj: dict[str, Any]) -> bytes:
            if table:
                obj = self._table(kind, [obj], obj["metadata"].get("resourceVersion", ""), request)
            return json.dumps({"type": typ, "object": obj}, separators=(",", ":")).encode() + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            nonlocal last
            for typ, obj in initial:
                yield frame(typ, obj)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not self.closing:
                await asyncio.sleep(WATCH_EVERY)
                await in_thread(self.tracker.refresh, {kind.name}, WATCH_EVERY * 0.8)
                changes = self.tracker.since(kind.name, last)
                if changes is None:
                    err = KubeError(410, f"too old resource version: {last}", "Expired")
                    yield json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n"
                    return
                for rv, typ, obj in changes:
                    last = rv
                    if keep(obj):
                        yield frame(typ, obj)

        return StreamingResponse(stream(), media_type="application/json")

    # -- logs -------------------------------------------------------------------------
    async def _logs(self, request: Request, namespace: str, name: str) -> Response:
        pod = await in_thread(self.get_object, KINDS["pods"], namespace, name)
        q = request.query_params
        containers = [c["name"] for c in pod["spec"]["containers"]]
        cname = q.get("container") or ""
        if not cname:
            if len(containers) != 1:
                raise KubeError(
                    400,
                    f"a container name must be specified for pod {name},"
                    f" choose one of: [{' '.join(containers)}]",
                )
            cname = containers[0]
        if cname not in containers:
            raise KubeError(400, f"container {cname} is not valid for pod {name}")
        status = next(
            (c for c in pod["status"].get("containerStatuses", []) if c["name"] == cname), None
        )
        previous = q.get("previous") in ("true", "1")
        cid = (status or {}).get("containerID", "").removeprefix("docker://")
        if not cid and not previous:
            reason = "ContainerCreating"
            if status is not None:
                reason = status["state"].get("waiting", {}).get("reason", reason)
            raise KubeError(
                400, f'container "{cname}" in pod "{name}" is waiting to start: {reason}'
            )
        sock = await in_thread(self.node_socket, pod["spec"].get("nodeName") or "")
        if previous:
            running = status is not None and "running" in status.get("state", {})
            found = await in_thread(
                docker.previous_container,
                sock,
                pod["metadata"]["uid"],
                cname,
                cid if running else "",
            )
            if found is None:
                raise KubeError(
                    400, f'previous terminated container "{cname}" in pod "{name}" not found'
                )
            cid = found
        params = {"stdout": "1", "stderr": "1"}
        follow = q.get("follow") in ("true", "1")
        if follow:
            params["follow"] = "1"
        if q.get("tailLines"):
            params["tail"] = str(int(q["tailLines"]))
        if q.get("timestamps") in ("true", "1"):
            params["timestamps"] = "1"
        since = _since(q.get("sinceTime"), q.get("sinceSeconds"))
        if since is not None:
            params["since"] = str(since)
        client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(sock)),
            base_url="http://docker",
            timeout=httpx.Timeout(10.0, read=None),
        )
        req = client.build_request("GET", f"/containers/{cid}/logs", params=params)
        resp = await client.send(req, stream=True)
        if resp.status_code >= 400:
            text = (await resp.aread()).decode(errors="replace")
            await client.aclose()
            raise KubeError(500, f"cannot read the logs of {name}/{cname}: {text[:300]}")

        async def body() -> AsyncIterator[bytes]:
            buf = b""
            framed: bool | None = None
            try:
                async for chunk in resp.aiter_raw():
                    buf += chunk
                    if framed is None and len(buf) >= 8:
                        framed = buf[0] in (0, 1, 2) and buf[1:4] == b"\0\0\0"
                    if framed is False:
                        yield buf
                        buf = b""
                        continue
                    while len(buf) >= 8:
                        size = int.from_bytes(buf[4:8], "big")
                        if len(buf) < 8 + size:
                            break
                        yield buf[8 : 8 + size]
                        buf = buf[8 + size :]
                if buf and not framed:
                    yield buf
            finally:
                await resp.aclose()
                await client.aclose()

        return StreamingResponse(body(), media_type="text/plain")

    def node_socket(self, lan_ip: str) -> Path:
        """The docker socket of the cluster's machine with this LAN address (a pod's node)."""
        return Path(
            need(self.services.subsystems.cloud, "cloud").engine.docker_socket(
                self._instance_of(lan_ip)
            )
        )

    def _instance_of(self, lan_ip: str) -> str:
        from sqlalchemy import select

        from openccs.store.models import Instance

        with self.services.store.session() as s:
            found = s.scalars(
                select(Instance.id).where(
                    Instance.cluster_id == self.cluster_id, Instance.lan_ip == lan_ip
                )
            ).first()
        if found is None:
            raise KubeError(404, f"node {lan_ip} of the pod is gone")
        return str(found)


def _since(since_time: str | None, since_seconds: str | None) -> int | None:
    if since_time:
        try:
            dt = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise KubeError(400, f"invalid sinceTime {since_time!r}") from None
        return int(dt.timestamp())
    if since_seconds:
        return int(time.time()) - int(since_seconds)
    return None


def _delete_options(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _body(raw: bytes, ctype: str, kind: Kind, sub: str) -> Any:
    if "protobuf" in ctype:
        # Typed clients (kubectl create namespace|deployment|service, drain's evictions)
        # send protobuf.
        if kind.name not in proto.OBJECTS_OF and sub != "eviction":
            raise KubeError(415, "send this object as application/json")
        try:
            return proto.decode_object(raw)
        except IndexError:
            raise KubeError(400, "the protobuf body cannot be read") from None
        except ValueError as exc:  # a field this reader does not know
            raise KubeError(415, f"{exc}: send this object as application/json") from None
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if ctype.split(";")[0].strip() == APPLY:  # an apply configuration may be YAML
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            raise KubeError(400, "the apply configuration is neither JSON nor YAML") from None
    raise KubeError(400, "the request body is not JSON")


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "").split(",")[0]
