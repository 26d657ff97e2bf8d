"""Writes through the Kubernetes API, mapped onto the API document's semantics: each one calls
the handler or domain function the matching v2 action uses, in one transaction.

A Deployment is a service of the API (its pod template, replicas, strategy); the Service of
the same name is that service's ClusterIP access (portMappings). What the service model does
not have answers 422 naming the field. Every write takes dryRun=All (done, rendered, rolled
back) and a field manager (managedFields, server-side apply: fields.py).
"""

from __future__ import annotations

import copy
import re
import shlex
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.actions import cluster as cluster_actions
from openccs.actions import namespace as ns_actions
from openccs.actions import service as svc_actions
from openccs.api.context import RequestContext
from openccs.api.params import validate_params
from openccs.domain import manifests
from openccs.domain import workloads as wl
from openccs.domain.accounts import Caller
from openccs.errors import ApiError
from openccs.kube import fields
from openccs.kube.errors import KubeError, from_api, invalid, not_found, unsupported
from openccs.kube.models import KubeAnnotations
from openccs.kube.objects import (
    CHANGE_CAUSE,
    HASH_LABEL,
    KINDS,
    SYSTEM_LABEL_PREFIXES,
    Kind,
    Snapshot,
    revision_uid,
    ts,
)
from openccs.kube.patch import APPLY, apply_patch
from openccs.store.models import Account, Cluster, Instance, Pod, Service
from openccs.timeutil import utcnow

if TYPE_CHECKING:
    from openccs.kube.app import ClusterApi


@dataclass(frozen=True)
class Options:
    """A write's query options: dryRun=All, fieldManager, force (apply's conflicts)."""

    dry_run: bool = False
    field_manager: str = ""
    force: bool = False
    # What the write did, for the answer's status: {"created": True} when a server-side
    # apply made the object (201, as Kubernetes answers).
    outcome: dict[str, bool] = field(default_factory=dict, compare=False)

    @classmethod
    def from_query(cls, q: Mapping[str, str], user_agent: str = "", body: Any = None) -> Options:
        dry = q.get("dryRun", "")
        given = body.get("dryRun") if isinstance(body, dict) else None
        if given:  # a DELETE's DeleteOptions: {"dryRun": ["All"]}
            dry = ",".join(given) if isinstance(given, list) else str(given)
        if dry not in ("", "All"):
            raise KubeError(400, f'dryRun: Unsupported value: "{dry}": supported values: "All"')
        manager = q.get("fieldManager", "")
        if len(manager) > 128:
            raise KubeError(400, "fieldManager: Too long: may not be longer than 128 characters")
        # Without one, the manager is the client's name (as the API server derives it).
        manager = manager or user_agent.split("/")[0] or "unknown"
        force = q.get("force", "")
        if force not in ("", "true", "false", "1", "0"):
            raise KubeError(400, f'force: Invalid value: "{force}": must be true or false')
        return cls(dry == "All", manager, force in ("true", "1"))


# The transaction of a dryRun=All write: everything happens in it, then it is rolled back.
_DRY: ContextVar[Session | None] = ContextVar("kube_dry_run", default=None)
# Done in the next write's transaction before it commits (see _remember_with_the_write).
_BEFORE_COMMIT: ContextVar[Callable[[Session], None] | None] = ContextVar(
    "kube_before_commit", default=None
)


class _Discard(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result


@contextmanager
def _session(api: ClusterApi) -> Iterator[Session]:
    dry = _DRY.get()
    if dry is not None:
        yield dry
        dry.flush()
        return
    with api.services.store.session() as s:
        yield s


def _now(api: ClusterApi, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    """The object as it is now; in a dry run, as it would be (rendered from the transaction
    that will be rolled back)."""
    dry = _DRY.get()
    if dry is None:
        return api.get_object(kind, namespace, name)
    dry.flush()
    ns = namespace if kind.namespaced else ""
    for obj in Snapshot(dry, api.cluster_id, {kind.name}).render(kind.name):
        meta = obj["metadata"]
        if meta["name"] == name and meta.get("namespace", "") == ns:
            before = api.tracker.get(kind.name, ns, name)
            if before is not None:
                meta["resourceVersion"] = before["metadata"].get("resourceVersion", "")
            return obj
    raise not_found(kind.name, name, kind.group)


@contextmanager
def _ctx(api: ClusterApi, action: str) -> Iterator[RequestContext]:
    """A request context of the account owner, as if the v2 action was called."""
    with _session(api) as s:
        account = s.get(Account, api.account_id)
        assert account is not None
        caller = Caller(
            account_id=account.id,
            app_id=account.app_id,
            uin=account.uin,
            account_enabled=account.enabled,
            secret_id="kube-admin",
            secret_key="",
            key_enabled=True,
        )
        ctx = RequestContext(
            request_id=str(uuid.uuid4()),
            action=action,
            region="",
            caller=caller,
            db=s,
            services=api.services,
        )
        yield ctx
        hook = _BEFORE_COMMIT.get()
        if hook is not None:
            _BEFORE_COMMIT.set(None)
            hook(s)
    if _DRY.get() is not None:
        return
    for fn in ctx.after_commit:
        fn()
    api.tracker.invalidate()


def dispatch(
    api: ClusterApi,
    method: str,
    kind: Kind,
    namespace: str,
    name: str,
    sub: str,
    body: Any,
    ctype: str,
    opts: Options,
) -> dict[str, Any]:
    if not opts.dry_run or method == "GET":
        return _write(api, method, kind, namespace, name, sub, body, ctype, opts)
    try:
        with api.services.store.session() as s:
            token = _DRY.set(s)
            try:
                result = _write(api, method, kind, namespace, name, sub, body, ctype, opts)
            finally:
                _DRY.reset(token)
            raise _Discard(result)  # rolls the transaction back
    except _Discard as done:
        return done.result


def _write(
    api: ClusterApi,
    method: str,
    kind: Kind,
    namespace: str,
    name: str,
    sub: str,
    body: Any,
    ctype: str,
    opts: Options,
) -> dict[str, Any]:
    seen: dict[str, Any] = {"given": body}
    token = _BEFORE_COMMIT.set(None)
    try:
        result = _dispatch(api, method, kind, namespace, name, sub, body, ctype, opts, seen)
        if seen.get("remembered"):
            return result
        if method in ("POST", "PUT", "PATCH") and not sub and result.get("kind") != "Status":
            return remember(api, kind, result, seen["given"], seen.get("managed"))
        return result
    except ApiError as err:
        raise from_api(err, kind.kind, name) from None
    finally:
        _BEFORE_COMMIT.reset(token)


OWN_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "description",
    manifests.INNER_SUBNET_ANNOTATION,
)
KEEPS_ANNOTATIONS = ("deployments", "services", "namespaces")


def remember(
    api: ClusterApi,
    kind: Kind,
    obj: dict[str, Any],
    given: Any,
    managed: list[fields.Entry] | None = None,
) -> dict[str, Any]:
    """Keep what the service model has no place for: the annotations given to a Deployment,
    Service or Namespace (kubectl apply's last-applied-configuration; a Deployment's
    change-cause also on its current revision) and who manages which field; `obj` is the
    object as it is now."""
    meta_now = obj["metadata"]
    with _session(api) as s:
        changed = _remember_in(s, api, kind, meta_now, given, managed)
    if not changed:
        return obj
    if _DRY.get() is None:
        api.tracker.invalidate()
    return _now(api, kind, meta_now.get("namespace", ""), meta_now["name"])


def _remember_in(
    s: Session,
    api: ClusterApi,
    kind: Kind,
    meta: dict[str, Any],
    given: Any,
    managed: list[fields.Entry] | None,
) -> bool:
    given_meta = given.get("metadata") if isinstance(given, dict) else None
    wanted: dict[str, str] | None = None
    if kind.name in KEEPS_ANNOTATIONS and isinstance(given_meta, dict):
        wanted = {k: str(v) for k, v in (given_meta.get("annotations") or {}).items()
                  if k not in OWN_ANNOTATIONS}  # fmt: skip
    changed = _keep(s, api, meta["uid"], wanted, managed)
    if kind.name == "deployments" and wanted and CHANGE_CAUSE in wanted:
        changed |= _keep_change_cause(s, api, meta["namespace"], meta["name"],
                                      wanted[CHANGE_CAUSE])  # fmt: skip
    return changed


def _remember_with_the_write(
    api: ClusterApi,
    kind: Kind,
    current: dict[str, Any],
    seen: dict[str, Any],
) -> None:
    """Keep what `remember` keeps in the transaction of the write itself (one commit, not
    two), for an object that exists (its uid is known before the write)."""

    def keep(s: Session) -> None:
        _remember_in(s, api, kind, current["metadata"], seen["given"], seen.get("managed"))
        seen["remembered"] = True

    _BEFORE_COMMIT.set(keep)


def _keep(
    s: Session,
    api: ClusterApi,
    uid: str,
    annotations: dict[str, str] | None,
    managed: list[fields.Entry] | None,
) -> bool:
    row = s.get(KubeAnnotations, (api.cluster_id, uid))
    if row is None and not annotations and not managed:
        return False
    if row is None:
        row = KubeAnnotations(cluster_id=api.cluster_id, uid=uid, annotations={})
        s.add(row)
    changed = False
    if annotations is not None and row.annotations != annotations:
        row.annotations = annotations
        changed = True
    if managed is not None:
        rendered = [e.render() for e in managed]
        if row.managed_fields != rendered:
            row.managed_fields = rendered
            changed = True
    return changed


def _keep_change_cause(s: Session, api: ClusterApi, namespace: str, name: str, cause: str) -> bool:
    """The change-cause of a Deployment is its current revision's (kubectl rollout history
    shows it per revision)."""
    cluster = s.get(Cluster, api.cluster_id)
    assert cluster is not None
    svc = wl.get_service(s, cluster, namespace, name)
    rev = revision_uid(
        api.cluster_id, svc.id, wl.template_hash(wl.template_of(svc.spec, svc.restarted_at))
    )
    row = s.get(KubeAnnotations, (api.cluster_id, rev))
    if row is None:
        s.add(KubeAnnotations(cluster_id=api.cluster_id, uid=rev,
                              annotations={CHANGE_CAUSE: cause}))  # fmt: skip
        return True
    if row.annotations.get(CHANGE_CAUSE) == cause:
        return False
    row.annotations = {**row.annotations, CHANGE_CAUSE: cause}
    return True


def _me(kind: Kind, opts: Options, operation: str, subresource: str = "") -> fields.Entry:
    return fields.Entry(opts.field_manager, operation, kind.api_version,
                        ts(utcnow()) or "", subresource=subresource)  # fmt: skip


def _managers(obj: dict[str, Any] | None) -> list[fields.Entry]:
    return fields.entries((obj or {}).get("metadata", {}).get("managedFields"))


def _dispatch(
    api: ClusterApi,
    method: str,
    kind: Kind,
    namespace: str,
    name: str,
    sub: str,
    body: Any,
    ctype: str,
    opts: Options,
    seen: dict[str, Any],
) -> dict[str, Any]:
    k = kind.name
    if method == "GET":
        if sub == "scale" and k == "deployments":
            return _scale_object(api.get_object(kind, namespace, name))
        if sub:
            raise KubeError(404, f"the server could not find the requested resource ({sub})")
        return api.get_object(kind, namespace, name)
    if method == "POST":
        if sub == "eviction" and k == "pods":
            return evict(api, namespace, name)
        if sub:
            raise KubeError(405, f"POST is not allowed on {k}/{sub}")
        if not isinstance(body, dict):
            raise KubeError(400, "the body must be an object")
        seen["managed"] = fields.update(None, body, [], _me(kind, opts, "Update"))
        return _create(api, kind, namespace, body)
    if method == "PATCH" and ctype.split(";")[0].strip() == APPLY:
        if sub:
            raise KubeError(405, f"server-side apply is not supported on {k}/{sub}")
        return _apply(api, kind, namespace, name, body, opts, seen)
    if method in ("PUT", "PATCH"):
        current = api.get_object(kind, namespace, name)
        if sub == "scale" and k == "deployments":
            return _scale(api, kind, namespace, name, current, method, ctype, body, opts)
        if sub:
            raise KubeError(405, f"{method} is not allowed on {k}/{sub}")
        new = body if method == "PUT" else apply_patch(current, ctype, body)
        if not isinstance(new, dict):
            raise KubeError(400, "the body must be an object")
        seen["given"] = new
        seen["managed"] = fields.update(current, new, _managers(current), _me(kind, opts, "Update"))
        _remember_with_the_write(api, kind, current, seen)
        return _change(api, kind, namespace, current, new)
    if method == "DELETE":
        if sub:
            raise KubeError(405, f"DELETE is not allowed on {k}/{sub}")
        return _delete(api, kind, namespace, name)
    raise KubeError(405, f"{method} is not supported")


def _create(api: ClusterApi, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    k = kind.name
    if k == "namespaces":
        return create_namespace(api, body)
    if k == "deployments":
        return put_deployment(api, namespace, body, create=True)
    if k == "services":
        return put_service(api, namespace, body, create=True)
    raise KubeError(405, f"creating {k} is not supported: {_why(k)}")


def _change(
    api: ClusterApi, kind: Kind, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    k = kind.name
    if k == "nodes":
        return update_node(api, current, new)
    if k == "deployments":
        return update_deployment(api, namespace, current, new)
    if k == "services":
        return put_service(api, namespace, new, create=False)
    if k == "namespaces":  # nothing of a namespace changes
        return _now(api, kind, namespace, current["metadata"]["name"])
    raise KubeError(405, f"changing {k} is not supported: {_why(k)}")


def _apply(
    api: ClusterApi,
    kind: Kind,
    namespace: str,
    name: str,
    body: Any,
    opts: Options,
    seen: dict[str, Any],
) -> dict[str, Any]:
    """Server-side apply: the object is created, or changed to hold what this manager
    applies; a field another manager set to another value is a 409 unless force=true."""
    if not isinstance(body, dict):
        raise KubeError(400, "the apply configuration must be an object")
    if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
        raise KubeError(
            400,
            f"the API version and kind in the data ({body.get('apiVersion')}, "
            f"{body.get('kind')}) do not match the expected ones ({kind.api_version}, "
            f"{kind.kind})",
        )
    meta = body.get("metadata")
    if not isinstance(meta, dict) or meta.get("name", name) != name:
        given = meta.get("name") if isinstance(meta, dict) else None
        raise KubeError(
            400, f"the name of the object ({given}) does not match the name on the URL ({name})"
        )
    if kind.namespaced and meta.get("namespace", namespace) not in ("", namespace):
        raise KubeError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    applied = copy.deepcopy(body)
    applied["metadata"]["name"] = name
    if kind.namespaced:
        applied["metadata"]["namespace"] = namespace
    try:
        current: dict[str, Any] | None = api.get_object(kind, namespace, name)
    except KubeError as err:
        if err.code != 404:
            raise
        current = None
    new, seen["managed"] = fields.apply(
        current, _managers(current), applied, _me(kind, opts, "Apply"), opts.force
    )
    seen["given"] = new
    if current is None:
        opts.outcome["created"] = True
        return _create(api, kind, namespace, new)
    _remember_with_the_write(api, kind, current, seen)
    return _change(api, kind, namespace, current, new)


def _scale(
    api: ClusterApi,
    kind: Kind,
    namespace: str,
    name: str,
    current: dict[str, Any],
    method: str,
    ctype: str,
    body: Any,
    opts: Options,
) -> dict[str, Any]:
    scale = _scale_object(current)
    new = body if method == "PUT" else apply_patch(scale, ctype, body)
    replicas = (new.get("spec") or {}).get("replicas") if isinstance(new, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(
            "Scale", name, "spec.replicas", "must be a non-negative integer", "autoscaling"
        )
    after = {**current, "spec": {**current["spec"], "replicas": replicas}}
    me = _me(kind, opts, "Update", "scale")
    managed = fields.update(current, after, _managers(current), me)
    with _ctx(api, "ModifyServiceReplicas") as ctx:
        svc_actions.modify_replicas(
            ctx, _ref(svc_actions.ReplicasParams, api, namespace, name, scaleTo=replicas)
        )
    with _session(api) as s:
        _keep(s, api, current["metadata"]["uid"], None, managed)
    if _DRY.get() is None:
        api.tracker.invalidate()
    return _scale_object(_now(api, kind, namespace, name))


def _delete(api: ClusterApi, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    k = kind.name
    current = api.get_object(kind, namespace, name)
    if k == "pods":
        with _ctx(api, "DeleteInstances") as ctx:
            p = validate_params(
                svc_actions.DeleteInstancesParams,
                {"clusterId": api.cluster_id, "instances": [name], "namespace": namespace},
            )
            res = svc_actions.delete_instances(ctx, p)
        if res["failedMap"]:
            raise KubeError(409, res["failedMap"][name])
    elif k == "deployments":
        with _ctx(api, "DeleteClusterService") as ctx:
            svc_actions.delete_service(ctx, _ref(svc_actions.ServiceRef, api, namespace, name))
    elif k == "services":
        return put_service(api, namespace, None, create=False, delete=name)
    elif k == "namespaces":
        with _ctx(api, "DeleteClusterNamespace") as ctx:
            pn = validate_params(
                ns_actions.DeleteNamespaceParams, {"clusterId": api.cluster_id, "names": [name]}
            )
            ns_actions.delete_namespace(ctx, pn)
    else:
        raise KubeError(405, f"deleting {k} is not supported: {_why(k)}")
    try:
        return _now(api, kind, namespace, name)
    except KubeError:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": k, "uid": current["metadata"]["uid"]},
        }


def _why(k: str) -> str:
    return {
        "pods": "pods belong to Deployments (create or scale a Deployment)",
        "replicasets": "ReplicaSets are the revisions of Deployments",
        "endpoints": "Endpoints follow the ready pods of a Service",
        "events": "events are recorded by the engine",
        "nodes": "nodes are the cluster's machines (AddClusterInstances)",
    }.get(k, "not part of the service model")


def _ref(model: type[Any], api: ClusterApi, namespace: str, name: str, **more: Any) -> Any:
    return validate_params(
        model, {"clusterId": api.cluster_id, "serviceName": name, "namespace": namespace, **more}
    )


def _scale_object(dep: dict[str, Any]) -> dict[str, Any]:
    meta = dep["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": dep["spec"]["replicas"]},
        "status": {
            "replicas": dep["status"].get("replicas", 0),
            "selector": f"{wl.APP_LABEL}={meta['name']}",
        },
    }


# -- namespaces, nodes, pods -------------------------------------------------------------


def create_namespace(api: ClusterApi, body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    name = meta.get("name") or ""
    with _ctx(api, "CreateClusterNamespace") as ctx:
        p = validate_params(
            ns_actions.CreateNamespaceParams,
            {
                "clusterId": api.cluster_id,
                "name": name,
                "description": (meta.get("annotations") or {}).get("description", ""),
            },
        )
        ns_actions.create_namespace(ctx, p)
    return _now(api, KINDS["namespaces"], "", name)


def _node_row(ctx: RequestContext, api: ClusterApi, lan_ip: str) -> Instance:
    node = ctx.db.scalars(
        select(Instance).where(Instance.cluster_id == api.cluster_id, Instance.lan_ip == lan_ip)
    ).first()
    if node is None:
        raise not_found("nodes", lan_ip)
    return node


def update_node(api: ClusterApi, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    name = current["metadata"]["name"]
    old_labels = current["metadata"].get("labels") or {}
    labels = (new.get("metadata") or {}).get("labels") or {}
    old_unsched = bool(current["spec"].get("unschedulable"))
    unsched = bool((new.get("spec") or {}).get("unschedulable"))
    for key in set(old_labels) | set(labels):
        if key.startswith(SYSTEM_LABEL_PREFIXES) and old_labels.get(key) != labels.get(key):
            raise invalid(
                "Node",
                name,
                f"metadata.labels[{key}]",
                "a label the system sets from the machine; it cannot be changed",
            )
    user = {k: v for k, v in labels.items() if not k.startswith(SYSTEM_LABEL_PREFIXES)}
    with _ctx(api, "ModifyClusterNodeLabel") as ctx:
        node = _node_row(ctx, api, name)
        if user != node.labels:
            for key, value in user.items():
                # The same checks as ModifyClusterNodeLabel's parameters.
                validate_params(cluster_actions.Label, {"key": key, "value": value})
            node.labels = user
        if unsched != old_unsched:
            p = validate_params(
                cluster_actions.ModifyClusterNodeSchedulableParams,
                {
                    "clusterId": api.cluster_id,
                    "instanceIds": [node.id],
                    "unschedulable": int(unsched),
                },
            )
            cluster_actions.modify_cluster_node_schedulable(ctx, p)
    return _now(api, KINDS["nodes"], "", name)


def evict(api: ClusterApi, namespace: str, name: str) -> dict[str, Any]:
    """The eviction subresource (kubectl drain): the pod goes, its Deployment makes another
    on a schedulable node, as DrainClusterNode does with each pod of the node."""
    with _ctx(api, "DrainClusterNode") as ctx:
        pod = ctx.db.scalars(
            select(Pod).where(
                Pod.cluster_id == api.cluster_id, Pod.namespace == namespace, Pod.name == name
            )
        ).first()
        if pod is None:
            raise not_found("pods", name)
        pod.deleting = True
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# -- Deployments -------------------------------------------------------------------------


def _quantity_milli(value: Any) -> int:
    text = str(value)
    if text.endswith("m"):
        return int(float(text[:-1]))
    return int(float(text) * 1000)


_MEM = {
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024 * 1024,
    "k": 1000 / 1048576,
    "M": 1e6 / 1048576,
    "G": 1e9 / 1048576,
}


def _quantity_mib(value: Any) -> int:
    text = str(value)
    for suffix in sorted(_MEM, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _MEM[suffix])
    return int(float(text) / 1048576)


_IGNORED_POD: dict[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": None,
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "securityContext": {},
}
_IGNORED_CONTAINER = (
    "ports",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
)


class _Conv:
    def __init__(self, kind: str, name: str, group: str = "apps") -> None:
        self.kind, self.name, self.group = kind, name, group

    def bad(self, field: str, why: str | None = None) -> KubeError:
        if why is None:
            return unsupported(self.kind, self.name, field, self.group)
        return invalid(self.kind, self.name, field, why, self.group)

    def leftovers(self, obj: dict[str, Any], known: set[str], where: str) -> None:
        for key, value in obj.items():
            if key not in known and value not in (None, {}, []):
                raise self.bad(f"{where}.{key}")


def _probe_in(c: _Conv, pr: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(
        pr,
        {
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
            "tcpSocket",
            "httpGet",
            "exec",
        },
        where,
    )
    out: dict[str, Any] = {
        "healthNum": pr.get("successThreshold", 1),
        "unhealthNum": pr.get("failureThreshold", 3),
        "intervalTime": pr.get("periodSeconds", 10),
        "timeOut": max(2, pr.get("timeoutSeconds", 2)),
        "delayTime": pr.get("initialDelaySeconds", 0),
    }
    if pr.get("tcpSocket"):
        port = pr["tcpSocket"].get("port")
        if not isinstance(port, int):
            raise c.bad(f"{where}.tcpSocket.port", "named ports are not supported: give a number")
        out.update(checkMethod="methodTcp", methodTcp={"port": port})
    elif pr.get("httpGet"):
        h = pr["httpGet"]
        if not isinstance(h.get("port"), int):
            raise c.bad(f"{where}.httpGet.port", "named ports are not supported: give a number")
        out.update(
            checkMethod="methodHttp",
            methodHttp={
                "port": h["port"],
                "path": h.get("path") or "/",
                "protocol": h.get("scheme", "HTTP"),
            },
        )
    elif pr.get("exec"):
        cmd = pr["exec"].get("command") or []
        text = cmd[2] if len(cmd) == 3 and cmd[:2] == ["sh", "-c"] else shlex.join(cmd)
        out.update(checkMethod="methodCmd", methodCmd={"cmd": text})
    else:
        raise c.bad(where, "a probe needs tcpSocket, httpGet or exec")
    return out


def _container_in(c: _Conv, ct: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(
        ct,
        {
            "name",
            "image",
            "command",
            "args",
            "workingDir",
            "env",
            "resources",
            "securityContext",
            "volumeMounts",
            "livenessProbe",
            "readinessProbe",
            *_IGNORED_CONTAINER,
        },
        where,
    )
    out: dict[str, Any] = {"containerName": ct.get("name", ""), "image": ct.get("image", "")}
    if ct.get("command"):
        out["command"] = shlex.join(ct["command"])
    if ct.get("args"):
        out["arguments"] = list(ct["args"])
    if ct.get("workingDir"):
        out["workingDir"] = ct["workingDir"]
    envs = []
    for i, e in enumerate(ct.get("env") or []):
        if "valueFrom" in e:
            raise c.bad(f"{where}.env[{i}].valueFrom")
        envs.append({"name": e.get("name", ""), "value": e.get("value", "")})
    if envs:
        out["envs"] = envs
    res = ct.get("resources") or {}
    c.leftovers(res, {"requests", "limits"}, f"{where}.resources")
    for part, cpu_key, mem_key in (
        ("requests", "cpu", "memory"),
        ("limits", "cpuLimits", "memoryLimits"),
    ):
        q = res.get(part) or {}
        c.leftovers(q, {"cpu", "memory"}, f"{where}.resources.{part}")
        try:
            if "cpu" in q:
                out[cpu_key] = _quantity_milli(q["cpu"])
            if "memory" in q:
                out[mem_key] = _quantity_mib(q["memory"])
        except ValueError:
            raise c.bad(f"{where}.resources.{part}", "not a quantity") from None
    sc = ct.get("securityContext") or {}
    c.leftovers(sc, {"privileged"}, f"{where}.securityContext")
    if sc.get("privileged"):
        out["privileged"] = True
    mounts = []
    for i, m in enumerate(ct.get("volumeMounts") or []):
        c.leftovers(m, {"name", "mountPath", "readOnly"}, f"{where}.volumeMounts[{i}]")
        mounts.append(
            {
                "volumeName": m.get("name", ""),
                "mountPath": m.get("mountPath", ""),
                "mode": "ro" if m.get("readOnly") else "rw",
            }
        )
    if mounts:
        out["volumeMounts"] = mounts
    if ct.get("livenessProbe"):
        out["liveProbe"] = _probe_in(c, ct["livenessProbe"], f"{where}.livenessProbe")
    if ct.get("readinessProbe"):
        out["readyProbe"] = _probe_in(c, ct["readinessProbe"], f"{where}.readinessProbe")
    return out


def _affinity_in(c: _Conv, aff: dict[str, Any], where: str) -> dict[str, Any]:
    c.leftovers(aff, {"nodeAffinity", "podAffinity"}, where)
    out: dict[str, Any] = {}
    na = aff.get("nodeAffinity")
    if na:
        c.leftovers(na, {"requiredDuringSchedulingIgnoredDuringExecution"}, f"{where}.nodeAffinity")
        terms = (na.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
            "nodeSelectorTerms"
        ) or []
        if len(terms) != 1:
            raise c.bad(f"{where}.nodeAffinity", "exactly one nodeSelectorTerm is supported")
        out["nodeAffinity"] = [
            {"key": e["key"], "operator": e["operator"], "values": e.get("values") or []}
            for e in terms[0].get("matchExpressions") or []
        ]
    pa = aff.get("podAffinity")
    if pa:
        terms = pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if len(terms) != 1 or terms[0].get("topologyKey") != "kubernetes.io/hostname":
            raise c.bad(
                f"{where}.podAffinity",
                "one required term with topologyKey kubernetes.io/hostname is supported",
            )
        sel = terms[0].get("labelSelector") or {}
        out["podAffinity"] = [
            {"key": e["key"], "operator": e["operator"], "values": e.get("values") or []}
            for e in sel.get("matchExpressions") or []
        ]
        out["podAffinity"] += [
            {"key": k, "operator": "In", "values": [v]}
            for k, v in (sel.get("matchLabels") or {}).items()
        ]
    return out


def deployment_params(
    api: ClusterApi, namespace: str, dep: dict[str, Any], existing: Service | None
) -> tuple[dict[str, Any], dict[str, str], str]:
    """A Deployment as the parameters of CreateClusterService/ModifyClusterService (v2 shape),
    its labels, and its restartedAt."""
    meta = dep.get("metadata") or {}
    name = meta.get("name") or ""
    c = _Conv("Deployment", name)
    if dep.get("kind", "Deployment") != "Deployment":
        raise c.bad("kind", "must be Deployment")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise c.bad("metadata.namespace", "does not match the namespace of the request")
    spec = copy.deepcopy(dep.get("spec") or {})
    c.leftovers(
        spec,
        {
            "replicas",
            "selector",
            "template",
            "strategy",
            "minReadySeconds",
            "paused",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        },
        "spec",
    )
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    labels = {k: str(v) for k, v in (tmeta.get("labels") or {}).items() if k != HASH_LABEL}
    sel = spec.get("selector") or {}
    c.leftovers(sel, {"matchLabels"}, "spec.selector")
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v and not (k == wl.APP_LABEL and v == name):
            raise c.bad("spec.selector", "`selector` does not match template `labels`")
    if labels.get(wl.APP_LABEL, name) != name:
        raise c.bad(
            f"spec.template.metadata.labels[{wl.APP_LABEL}]",
            f"must be the Deployment's name ({name})",
        )
    labels[wl.APP_LABEL] = name
    restarted = (tmeta.get("annotations") or {}).get("openccs.io/restartedAt", "")
    pod = tmpl.get("spec") or {}
    c.leftovers(pod, {"containers", "volumes", "affinity", *_IGNORED_POD}, "spec.template.spec")
    if pod.get("restartPolicy", "Always") != "Always":
        raise c.bad("spec.template.spec.restartPolicy", "only Always is supported")
    containers = [
        _container_in(c, ct, f"spec.template.spec.containers[{i}]")
        for i, ct in enumerate(pod.get("containers") or [])
    ]
    volumes = []
    for i, v in enumerate(pod.get("volumes") or []):
        where = f"spec.template.spec.volumes[{i}]"
        c.leftovers(v, {"name", "hostPath", "emptyDir"}, where)
        if v.get("hostPath"):
            volumes.append(
                {
                    "name": v.get("name", ""),
                    "volumeType": "hostPath",
                    "hostPath": v["hostPath"].get("path", ""),
                }
            )
        elif "emptyDir" in v:
            volumes.append({"name": v.get("name", ""), "volumeType": "hostPath", "hostPath": ""})
        else:
            raise c.bad(where, "only hostPath and emptyDir volumes are supported")
    strategy = spec.get("strategy") or {}
    params: dict[str, Any] = {
        "clusterId": api.cluster_id,
        "namespace": namespace,
        "serviceName": name,
        "serviceDesc": (meta.get("annotations") or {}).get("description", ""),
        "replicas": spec.get("replicas", 1),
        "containers": containers,
        "volumes": volumes,
        "strategy": strategy.get("type", "RollingUpdate"),
        "minReadySeconds": spec.get("minReadySeconds", 0),
        **_affinity_in(c, pod.get("affinity") or {}, "spec.template.spec.affinity"),
    }
    if existing is not None:
        params["accessType"] = existing.spec.get("accessType", "None")
        params["portMappings"] = existing.spec.get("portMappings", [])
        params["subnetId"] = existing.spec.get("subnetId") or None
        params["serviceDesc"] = existing.description
    else:
        params["accessType"] = "None"
    return params, labels, restarted


_FIELDS = {
    "containerName": "name",
    "cpu": "resources.requests.cpu",
    "cpuLimits": "resources.limits.cpu",
    "memory": "resources.requests.memory",
    "memoryLimits": "resources.limits.memory",
    "envs": "env",
    "arguments": "args",
    "liveProbe": "livenessProbe",
    "readyProbe": "readinessProbe",
    "healthCheck": "readinessProbe",
    "volumeName": "name",
}


def k8s_field(param: str, kind: str) -> str:
    """A v2 parameter path (containers.0.cpu) as the Kubernetes field it came from."""
    parts = param.split(".")
    if kind == "Service" and parts[0] == "portMappings":
        tail = {"lbPort": "port", "containerPort": "targetPort"}.get(parts[-1], parts[-1])
        return f"spec.ports[{parts[1]}].{tail}" if len(parts) > 2 else "spec.ports"
    head = {
        "containers": "spec.template.spec.containers",
        "volumes": "spec.template.spec.volumes",
        "replicas": "spec.replicas",
        "serviceName": "metadata.name",
        "minReadySeconds": "spec.minReadySeconds",
        "strategy": "spec.strategy.type",
        "namespace": "metadata.namespace",
    }.get(parts[0], parts[0])
    out = head
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else "." + _FIELDS.get(part, part)
    return out


def _validate(model: type[Any], params: dict[str, Any], kind: str, name: str) -> Any:
    try:
        return validate_params(model, params)
    except ApiError as err:
        m = re.match(r"^(?:Invalid|Missing required) parameter (\S+?)(?:: (.*))?$", err.message)
        if err.code == 4000 and m:
            group = "apps" if kind == "Deployment" else ""
            why = m.group(2) or "Required value"
            raise invalid(kind, name, k8s_field(m.group(1), kind), why, group) from None
        raise from_api(err, kind, name) from None


def put_deployment(
    api: ClusterApi, namespace: str, dep: dict[str, Any], create: bool
) -> dict[str, Any]:
    name = (dep.get("metadata") or {}).get("name") or ""
    if not name:
        raise invalid("Deployment", "", "metadata.name", "Required value: name is required", "apps")
    params, labels, _ = deployment_params(api, namespace, dep, None)
    p = _validate(svc_actions.ServiceParams, params, "Deployment", name)
    with _ctx(api, "CreateClusterService") as ctx:
        svc_actions.create_service(ctx, p)
        ctx.db.flush()
        cluster = ctx.db.get(Cluster, api.cluster_id)
        svc = wl.get_service(ctx.db, cluster, namespace, name)  # type: ignore[arg-type]
        svc.labels = labels
        if (dep.get("spec") or {}).get("paused"):
            svc.paused = True
    return _now(api, KINDS["deployments"], namespace, name)


def _norm(value: Any) -> Any:
    """Without empty values (what a Go client sends for its zero fields)."""
    if isinstance(value, dict):
        out = {k: _norm(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _strip_hash(tmpl: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(tmpl)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return dict(_norm(t))


def update_deployment(
    api: ClusterApi, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    name = current["metadata"]["name"]
    c = _Conv("Deployment", name)
    new_spec, cur_spec = new.get("spec") or {}, current["spec"]
    replicas = new_spec.get("replicas", cur_spec["replicas"])
    if not isinstance(replicas, int) or replicas < 0:
        raise c.bad("spec.replicas", "must be a non-negative integer")
    new_tmpl = _strip_hash(new_spec.get("template") or {})
    cur_tmpl = _strip_hash(cur_spec["template"])
    new_meta = new.get("metadata") or {}
    new_labels = new_meta.get("labels") or {}
    if new_meta.get("name", name) != name:
        raise c.bad("metadata.name", "field is immutable")
    with _ctx(api, "ModifyClusterService") as ctx:
        cluster = ctx.db.get(Cluster, api.cluster_id)
        assert cluster is not None
        svc = wl.get_service(ctx.db, cluster, namespace, name)
        if new_tmpl != cur_tmpl or _changed(new_spec, cur_spec, ("strategy", "minReadySeconds")):
            _change_template(ctx, api, svc, current, new, new_tmpl, cur_tmpl)
        if replicas != svc.replicas:
            svc_actions.modify_replicas(
                ctx, _ref(svc_actions.ReplicasParams, api, namespace, name, scaleTo=replicas)
            )
        paused = bool(new_spec.get("paused"))
        if paused != svc.paused:
            ref = _ref(svc_actions.ServiceRef, api, namespace, name)
            (svc_actions.pause if paused else svc_actions.resume)(ctx, ref)
        user_labels = {k: str(v) for k, v in new_labels.items() if k != wl.APP_LABEL}
        if {**user_labels, wl.APP_LABEL: name} != svc.labels and new_tmpl == cur_tmpl:
            p = _validate(
                svc_actions.LabelsParams,
                {
                    "clusterId": api.cluster_id,
                    "serviceName": name,
                    "namespace": namespace,
                    "labels": user_labels,
                },
                "Deployment",
                name,
            )
            svc_actions.modify_labels(ctx, p)
    return _now(api, KINDS["deployments"], namespace, name)


def _changed(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return any((_norm(a.get(k)) or None) != (_norm(b.get(k)) or None) for k in keys)


def _change_template(
    ctx: RequestContext,
    api: ClusterApi,
    svc: Service,
    current: dict[str, Any],
    new: dict[str, Any],
    new_tmpl: dict[str, Any],
    cur_tmpl: dict[str, Any],
) -> None:
    from openccs.kube.objects import _template_for

    # Back to a revision it had (kubectl rollout undo): that revision becomes the newest,
    # as RollBackClusterService does.
    revs = wl.revisions(ctx.db, svc)
    cur_rs = wl.current_replicaset(ctx.db, svc)
    for rs in revs:
        if cur_rs is not None and rs.id == cur_rs.id:
            continue
        if _strip_hash(_template_for(svc, rs)) == new_tmpl and not _changed(
            new["spec"], current["spec"], ("strategy",)
        ):
            spec = dict(svc.spec)
            for key in ("containers", "volumes", "nodeAffinity", "podAffinity"):
                spec[key] = rs.template.get(key)
            svc.spec = spec
            svc.restarted_at = rs.template.get("restartedAt", "")
            rs.revision = max(r.revision for r in revs) + 1
            svc.operation = "RollingBack"
            svc.updated_at = utcnow()
            return
    # Only images changed (kubectl set image): ModifyClusterServiceImage's domain function.
    cur_cs = cur_tmpl["spec"]["containers"]
    new_cs = (new_tmpl.get("spec") or {}).get("containers") or []
    if [x["name"] for x in cur_cs] == [x.get("name") for x in new_cs]:
        swapped = copy.deepcopy(new_tmpl)
        for a, b in zip(swapped["spec"]["containers"], cur_cs, strict=True):
            a["image"] = b["image"]
        if swapped == cur_tmpl and not _changed(new["spec"], current["spec"], ("strategy",)):
            changes = {
                b["name"]: a["image"]
                for a, b in zip(new_cs, cur_cs, strict=True)
                if a.get("image") != b["image"]
            }
            for cname, image in changes.items():
                _validate(
                    svc_actions.ImageChange,
                    {"containerName": cname, "image": image},
                    "Deployment",
                    svc.name,
                )
            wl.set_images(svc, changes)
            return
    # Anything else: the whole service again, as ModifyClusterService.
    params, labels, restarted = deployment_params(api, svc.namespace, new, svc)
    params["replicas"] = svc.replicas
    p = _validate(svc_actions.ServiceParams, params, "Deployment", svc.name)
    svc_actions.modify_service(ctx, p)
    svc.labels = labels
    svc.restarted_at = restarted


# -- Services ----------------------------------------------------------------------------


def put_service(
    api: ClusterApi,
    namespace: str,
    obj: dict[str, Any] | None,
    create: bool,
    delete: str = "",
) -> dict[str, Any]:
    """A Service is the ClusterIP access of the Deployment of the same name."""
    params_mappings: list[dict[str, Any]] = []
    if obj is None:
        name, access = delete, "None"
    else:
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        c = _Conv("Service", name, "")
        spec = obj.get("spec") or {}
        c.leftovers(
            spec,
            {
                "type",
                "selector",
                "ports",
                "clusterIP",
                "clusterIPs",
                "sessionAffinity",
                "ipFamilies",
                "ipFamilyPolicy",
                "internalTrafficPolicy",
                "externalTrafficPolicy",
                "allocateLoadBalancerNodePorts",
            },
            "spec",
        )
        access, subnet_id = _access_of(c, meta, spec)
        if spec.get("sessionAffinity", "None") != "None":
            raise c.bad("spec.sessionAffinity")
        for i, port in enumerate(spec.get("ports") or []):
            c.leftovers(
                port, {"name", "port", "targetPort", "protocol", "nodePort"}, f"spec.ports[{i}]"
            )
            target = port.get("targetPort", port.get("port"))
            if not isinstance(target, int):
                raise c.bad(
                    f"spec.ports[{i}].targetPort",
                    "named target ports are not supported: give the container port",
                )
            mapping = {
                "lbPort": port.get("port"),
                "containerPort": target,
                "protocol": port.get("protocol", "TCP"),
            }
            if port.get("nodePort"):
                if access == "ClusterIP":
                    raise c.bad(
                        f"spec.ports[{i}].nodePort",
                        "may not be used when `type` is 'ClusterIP'",
                    )
                mapping["nodePort"] = port["nodePort"]
            params_mappings.append(mapping)
        if not params_mappings:
            raise c.bad("spec.ports", "Required value: a Service needs at least one port")
    with _ctx(api, "ModifyClusterService") as ctx:
        cluster = ctx.db.get(Cluster, api.cluster_id)
        assert cluster is not None
        svc = ctx.db.scalars(
            select(Service).where(
                Service.cluster_id == cluster.id,
                Service.namespace == namespace,
                Service.name == name,
                Service.deleting.is_(False),
            )
        ).first()
        if svc is None:
            if obj is None:
                going = ctx.db.scalars(
                    select(Service.id).where(
                        Service.cluster_id == cluster.id,
                        Service.namespace == namespace,
                        Service.name == name,
                    )
                ).first()
                if going is None:
                    raise not_found("services", name)
                # Its Deployment is being deleted, and the Service with it.
                return {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "kind": "services"},
                }
            raise invalid(
                "Service",
                name,
                "metadata.name",
                f"no Deployment {name} in namespace {namespace}: in openccs a Service"
                " is the access of the Deployment of the same name; create the"
                " Deployment first",
            )
        if obj is not None:
            c = _Conv("Service", name, "")
            spec = obj.get("spec") or {}
            for k, v in (spec.get("selector") or {}).items():
                if svc.labels.get(k) != v:
                    raise c.bad(
                        f"spec.selector[{k}]", f"must select the pods of the Deployment {name}"
                    )
            if create and svc.spec.get("accessType", "ClusterIP") != "None":
                raise KubeError(
                    409,
                    f'services "{name}" already exists',
                    "AlreadyExists",
                    {"name": name, "kind": "services"},
                )
            ip = spec.get("clusterIP")
            if ip and ip != "None" and svc.cluster_ip and ip != svc.cluster_ip:
                raise c.bad("spec.clusterIP", "field is immutable")
            if ip == "None":
                raise c.bad("spec.clusterIP", "headless services are not supported")
        params = _service_params(api, svc)
        params.update(accessType=access, portMappings=params_mappings)
        if access == "SvcLBTypeInner":
            params["subnetId"] = subnet_id
        p = _validate(svc_actions.ServiceParams, params, "Service", name)
        svc_actions.modify_service(ctx, p)
    if obj is None:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": "services"},
        }
    return _now(api, KINDS["services"], namespace, name)


def _access_of(c: _Conv, meta: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str]:
    """The accessType (and the subnet of an inner balancer) a Service's type means:
    ClusterIP, NodePort, LoadBalancer; a LoadBalancer annotated with a subnet, as on TKE,
    is the VPC's own (SvcLBTypeInner)."""
    kind = spec.get("type") or "ClusterIP"
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise c.bad(
            "spec.type",
            f'Unsupported value: "{kind}": supported values: "ClusterIP", "LoadBalancer",'
            ' "NodePort"',
        )
    if spec.get("externalTrafficPolicy", "Cluster") not in ("Cluster",):
        raise c.bad("spec.externalTrafficPolicy", "only Cluster is supported")
    if spec.get("allocateLoadBalancerNodePorts", True) is not True:
        raise c.bad("spec.allocateLoadBalancerNodePorts", "node ports are always allocated")
    subnet = ((meta.get("annotations") or {}).get(manifests.INNER_SUBNET_ANNOTATION)) or ""
    if subnet and kind != "LoadBalancer":
        raise c.bad(
            f"metadata.annotations[{manifests.INNER_SUBNET_ANNOTATION}]",
            "only a LoadBalancer Service takes its address from a subnet",
        )
    if kind == "LoadBalancer" and subnet:
        return "SvcLBTypeInner", str(subnet)
    return kind, ""


def _service_params(api: ClusterApi, svc: Service) -> dict[str, Any]:
    """A service's stored spec as ModifyClusterService parameters (the describe shape)."""
    spec = svc.spec
    containers = []
    for ct in spec.get("containers", []):
        containers.append({k: v for k, v in ct.items() if v is not None})
    return {
        "clusterId": api.cluster_id,
        "serviceName": svc.name,
        "namespace": svc.namespace,
        "serviceDesc": svc.description,
        "replicas": svc.replicas,
        "containers": containers,
        "volumes": spec.get("volumes") or [],
        "subnetId": spec.get("subnetId") or None,
        "nodeAffinity": spec.get("nodeAffinity") or [],
        "podAffinity": spec.get("podAffinity") or [],
        "strategy": spec.get("strategy", "RollingUpdate"),
        "minReadySeconds": spec.get("minReadySeconds", 0),
    }
