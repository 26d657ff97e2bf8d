"""Writes through the Kubernetes API, mapped onto the API document's semantics: each one
decodes the object (`kube/convert.py`) and calls the workloads backend the matching v2
action calls (`backends/workloads.py`), in one transaction.

A Deployment is a service of the API (its pod template, replicas, strategy); the Service of
the same name is that service's ClusterIP access (portMappings). What the service model does
not have answers 422 naming the field. Every write takes dryRun=All (done, rendered, rolled
back) and a field manager (managedFields, server-side apply: fields.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from openccs.backends import Work
from openccs.backends import workloads as backend
from openccs.backends.inputs import NodeLabel
from openccs.backends.workload_params import (
    CreateNamespaceParams,
    ImageChange,
    ServiceLabels,
    ServiceParams,
    spec_of,
)
from openccs.domain import clusters as cluster_domain
from openccs.domain import manifests
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.errors import ApiError
from openccs.kube import fields
from openccs.kube.convert import (
    Conv,
    changed,
    deployment_params,
    k8s_field,
    service_access,
    service_params,
    strip_hash,
    validate,
)
from openccs.kube.errors import KubeError, from_api, invalid, not_found
from openccs.kube.kinds import CHANGE_CAUSE, KINDS, Kind, ts
from openccs.kube.models import KubeAnnotations
from openccs.kube.patch import APPLY, apply_patch
from openccs.kube.render import SYSTEM_LABEL_PREFIXES, revision_uid, template_for
from openccs.kube.snapshot import Snapshot
from openccs.schema import validate_params
from openccs.store.models import Cluster, Instance, ReplicaSet, Service
from openccs.timeutil import utcnow

if TYPE_CHECKING:
    from openccs.kube.app import ClusterApi

__all__ = ["WRITES", "Options", "Writes", "dispatch", "k8s_field", "remember"]

Obj = dict[str, Any]
# A kind's write handlers: create (namespace, the object given); change (namespace, the
# object as it is, as it is to be); delete (namespace, name; None: answer the object as it
# is now, or a Status once it has gone).
Create = Callable[["ClusterApi", str, Obj], Obj]
Change = Callable[["ClusterApi", str, Obj, Obj], Obj]
Delete = Callable[["ClusterApi", str, str], Obj | None]


@dataclass(frozen=True)
class Sub:
    """A subresource the writes serve: `get` answers GET, `create` POST, `change` PUT and
    PATCH (with the object as it is); a method without a handler is refused."""

    get: Callable[[ClusterApi, Kind, str, str], Obj] | None = None
    create: Callable[[ClusterApi, str, str], Obj] | None = None
    change: Callable[[ClusterApi, Kind, str, str, Obj, str, str, Any, Options], Obj] | None = None


@dataclass(frozen=True)
class Writes:
    """The writes of one kind, as data: a handler per write verb the kind has in
    `kinds.KINDS` (`create`: POST, and a server-side apply that makes the object; `change`:
    "update" (PUT) and "patch" (PATCH, and an apply that changes it); `delete`: DELETE), its
    subresources, and `why` it refuses a verb it does not have (405)."""

    create: Create | None = None
    change: Change | None = None
    delete: Delete | None = None
    subresources: Mapping[str, Sub] = field(default_factory=dict)
    why: str = "not part of the service model"

    def verbs(self) -> set[str]:
        """The write verbs these handlers serve (what `kinds.KINDS` must list)."""
        return {verb for verb, attr in VERB_HANDLER.items() if getattr(self, attr) is not None}


# Which handler of `Writes` serves each write verb of discovery.
VERB_HANDLER = {"create": "create", "update": "change", "patch": "change", "delete": "delete"}


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
def _work(api: ClusterApi) -> Iterator[Work]:
    """A backend call's unit of work for the cluster's account; its effects run once the
    transaction has committed (never in a dry run, which rolls it back)."""
    with _session(api) as s:
        work = Work(s, api.account_id, api.services)
        yield work
        hook = _BEFORE_COMMIT.get()
        if hook is not None:
            _BEFORE_COMMIT.set(None)
            hook(s)
    if _DRY.get() is not None:
        return
    work.effects.run(api.services)
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
    handlers = WRITES[k]
    served = handlers.subresources.get(sub) if sub else None
    if method == "GET":
        if served is not None and served.get is not None:
            return served.get(api, kind, namespace, name)
        if sub:
            raise KubeError(404, f"the server could not find the requested resource ({sub})")
        return api.get_object(kind, namespace, name)
    if method == "POST":
        if served is not None and served.create is not None:
            return served.create(api, namespace, name)
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
        if served is not None and served.change is not None:
            return served.change(api, kind, namespace, name, current, method, ctype, body, opts)
        if sub:
            raise KubeError(405, f"{method} is not allowed on {k}/{sub}")
        new = body if method == "PUT" else apply_patch(current, ctype, body)
        if not isinstance(new, dict):
            raise KubeError(400, "the body must be an object")
        seen["given"] = new
        seen["managed"] = fields.update(current, new, _managers(current), _me(kind, opts, "Update"))
        _remember_with_the_write(api, kind, current, seen)
        return _change(api, kind, namespace, current, new, "update" if method == "PUT" else "patch")
    if method == "DELETE":
        if sub:
            raise KubeError(405, f"DELETE is not allowed on {k}/{sub}")
        return _delete(api, kind, namespace, name)
    raise KubeError(405, f"{method} is not supported")


def _handler(kind: Kind, verb: str, doing: str) -> Any:
    """The kind's handler of a write verb, or the 405 a kind without that verb answers."""
    handlers = WRITES[kind.name]
    found = getattr(handlers, VERB_HANDLER[verb]) if verb in kind.verbs else None
    if found is None:
        raise KubeError(405, f"{doing} {kind.name} is not supported: {handlers.why}")
    return found


def _create(api: ClusterApi, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    create: Create = _handler(kind, "create", "creating")
    return create(api, namespace, body)


def _change(
    api: ClusterApi,
    kind: Kind,
    namespace: str,
    current: dict[str, Any],
    new: dict[str, Any],
    verb: str,
) -> dict[str, Any]:
    change: Change = _handler(kind, verb, "changing")
    return change(api, namespace, current, new)


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
    return _change(api, kind, namespace, current, new, "patch")


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
    with _work(api) as w:
        backend.scale(w, backend.find_service(w, api.cluster_id, namespace, name), replicas)
    with _session(api) as s:
        _keep(s, api, current["metadata"]["uid"], None, managed)
    if _DRY.get() is None:
        api.tracker.invalidate()
    return _scale_object(_now(api, kind, namespace, name))


def _delete(api: ClusterApi, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    current = api.get_object(kind, namespace, name)
    delete: Delete = _handler(kind, "delete", "deleting")
    answer = delete(api, namespace, name)
    if answer is not None:
        return answer
    try:
        return _now(api, kind, namespace, name)
    except KubeError:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": kind.name, "uid": current["metadata"]["uid"]},
        }


def _get_scale(api: ClusterApi, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    return _scale_object(api.get_object(kind, namespace, name))


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


def create_namespace(api: ClusterApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    name = meta.get("name") or ""
    p = validate_params(
        CreateNamespaceParams,
        {
            "clusterId": api.cluster_id,
            "name": name,
            "description": (meta.get("annotations") or {}).get("description", ""),
        },
    )
    with _work(api) as w:
        backend.create_namespace(w, p.clusterId, p.name, p.description)
    return _now(api, KINDS["namespaces"], "", name)


def _namespace_unchanged(
    api: ClusterApi, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """Nothing of a namespace changes (its annotations are kept by `remember`)."""
    return _now(api, KINDS["namespaces"], namespace, current["metadata"]["name"])


def _delete_namespace(api: ClusterApi, namespace: str, name: str) -> None:
    with _work(api) as w:
        backend.delete_namespaces(w, api.cluster_id, [name])


def _node_row(w: Work, api: ClusterApi, lan_ip: str) -> Instance:
    node = cluster_domain.node_at(w.db, api.cluster_id, lan_ip)
    if node is None:
        raise not_found("nodes", lan_ip)
    return node


def update_node(
    api: ClusterApi, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
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
    with _work(api) as w:
        node = _node_row(w, api, name)
        if user != node.labels:
            for key, value in user.items():
                # The same checks as ModifyClusterNodeLabel's parameters.
                validate_params(NodeLabel, {"key": key, "value": value})
            node.labels = user
        if unsched != old_unsched:
            cluster_domain.set_schedulable(node, unsched)
    return _now(api, KINDS["nodes"], "", name)


def _delete_pod(api: ClusterApi, namespace: str, name: str) -> None:
    with _work(api) as w:
        _, failed = backend.delete_instances(w, api.cluster_id, namespace, [name])
    if failed:
        raise KubeError(409, failed[name])


def evict(api: ClusterApi, namespace: str, name: str) -> dict[str, Any]:
    """The eviction subresource (kubectl drain): the pod goes, its Deployment makes another
    on a schedulable node, as DrainClusterNode does with each pod of the node."""
    with _work(api) as w:
        if not backend.evict(w, api.cluster_id, namespace, name):
            raise not_found("pods", name)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# -- Deployments -------------------------------------------------------------------------


def create_deployment(api: ClusterApi, namespace: str, dep: dict[str, Any]) -> dict[str, Any]:
    name = (dep.get("metadata") or {}).get("name") or ""
    if not name:
        raise invalid("Deployment", "", "metadata.name", "Required value: name is required", "apps")
    params, labels, _ = deployment_params(api.cluster_id, namespace, dep, None)
    p = validate(ServiceParams, params, "Deployment", name)
    with _work(api) as w:
        backend.create_service(
            w,
            api.cluster_id,
            namespace,
            name,
            spec_of(p),
            p.replicas,
            description=p.serviceDesc,
            labels=labels,
            paused=bool((dep.get("spec") or {}).get("paused")),
        )
    return _now(api, KINDS["deployments"], namespace, name)


def update_deployment(
    api: ClusterApi, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    name = current["metadata"]["name"]
    c = Conv("Deployment", name)
    new_spec, cur_spec = new.get("spec") or {}, current["spec"]
    replicas = new_spec.get("replicas", cur_spec["replicas"])
    if not isinstance(replicas, int) or replicas < 0:
        raise c.bad("spec.replicas", "must be a non-negative integer")
    new_tmpl = strip_hash(new_spec.get("template") or {})
    cur_tmpl = strip_hash(cur_spec["template"])
    new_meta = new.get("metadata") or {}
    new_labels = new_meta.get("labels") or {}
    if new_meta.get("name", name) != name:
        raise c.bad("metadata.name", "field is immutable")
    with _work(api) as w:
        svc = backend.find_service(w, api.cluster_id, namespace, name)
        if new_tmpl != cur_tmpl or changed(new_spec, cur_spec, ("strategy", "minReadySeconds")):
            _change_template(w, api, svc, current, new, new_tmpl, cur_tmpl)
        if replicas != svc.replicas:
            backend.scale(w, svc, replicas)
        paused = bool(new_spec.get("paused"))
        if paused != svc.paused:
            (backend.pause if paused else backend.resume)(w, svc)
        user_labels = {k: str(v) for k, v in new_labels.items() if k != wl.APP_LABEL}
        if {**user_labels, wl.APP_LABEL: name} != svc.labels and new_tmpl == cur_tmpl:
            p = validate(ServiceLabels, {"labels": user_labels}, "Deployment", name)
            backend.set_labels(w, svc, dict(p.labels))
    return _now(api, KINDS["deployments"], namespace, name)


def _delete_deployment(api: ClusterApi, namespace: str, name: str) -> None:
    with _work(api) as w:
        backend.delete_service(w, backend.find_service(w, api.cluster_id, namespace, name))


def _revision_like(
    w: Work, svc: Service, new_tmpl: dict[str, Any], cur_tmpl: dict[str, Any]
) -> ReplicaSet | None:
    """An earlier revision whose template is the one given (kubectl rollout undo)."""
    cur_rs = wl.current_replicaset(w.db, svc)
    for rs in wl.revisions(w.db, svc):
        if cur_rs is not None and rs.id == cur_rs.id:
            continue
        if strip_hash(template_for(svc, rs)) == new_tmpl:
            return rs
    return None


def _change_template(
    w: Work,
    api: ClusterApi,
    svc: Service,
    current: dict[str, Any],
    new: dict[str, Any],
    new_tmpl: dict[str, Any],
    cur_tmpl: dict[str, Any],
) -> None:
    same_strategy = not changed(new["spec"], current["spec"], ("strategy",))
    # Back to a revision it had (kubectl rollout undo): RollBackClusterService's rule.
    target = _revision_like(w, svc, new_tmpl, cur_tmpl) if same_strategy else None
    if target is not None:
        backend.rollback(w, svc, target)
        return
    # Only images changed (kubectl set image): ModifyClusterServiceImage's rule.
    cur_cs = cur_tmpl["spec"]["containers"]
    new_cs = (new_tmpl.get("spec") or {}).get("containers") or []
    if [x["name"] for x in cur_cs] == [x.get("name") for x in new_cs]:
        swapped = copy.deepcopy(new_tmpl)
        for a, b in zip(swapped["spec"]["containers"], cur_cs, strict=True):
            a["image"] = b["image"]
        if swapped == cur_tmpl and same_strategy:
            changes = [
                (b["name"], a["image"])
                for a, b in zip(new_cs, cur_cs, strict=True)
                if a.get("image") != b["image"]
            ]
            for cname, image in changes:
                given = {"containerName": cname, "image": image}
                validate(ImageChange, given, "Deployment", svc.name)
            backend.set_images(w, svc, changes)
            return
    # Anything else: the whole service again, as ModifyClusterService.
    params, labels, restarted = deployment_params(api.cluster_id, svc.namespace, new, svc)
    params["replicas"] = svc.replicas
    p = validate(ServiceParams, params, "Deployment", svc.name)
    backend.update_service(w, svc, spec_of(p), p.replicas, p.serviceDesc)
    svc.labels = labels
    svc.restarted_at = restarted


# -- Services ----------------------------------------------------------------------------


def _deleted(name: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "kind": "services"},
    }


def put_service(
    api: ClusterApi,
    namespace: str,
    obj: dict[str, Any] | None,
    create: bool,
    delete: str = "",
) -> dict[str, Any]:
    """A Service is the access (ClusterIP, NodePort, LoadBalancer) of the Deployment of the same
    name."""
    if obj is None:
        name, access, subnet_id = delete, "None", ""
        mappings: list[dict[str, Any]] = []
    else:
        name = (obj.get("metadata") or {}).get("name") or ""
        access, subnet_id, mappings = service_access(obj)
    with _work(api) as w:
        svc = backend.service_or_none(w, api.cluster_id, namespace, name)
        if svc is None:
            if obj is None:
                if not backend.is_being_deleted(w, api.cluster_id, namespace, name):
                    raise not_found("services", name)
                return _deleted(name)  # its Deployment is being deleted, and the Service with it
            raise invalid(
                "Service",
                name,
                "metadata.name",
                f"no Deployment {name} in namespace {namespace}: in openccs a Service"
                " is the access of the Deployment of the same name; create the"
                " Deployment first",
            )
        if obj is not None:
            _check_service_object(svc, obj, create)
        params = service_params(api.cluster_id, svc)
        params.update(accessType=access, portMappings=mappings)
        if access == "SvcLBTypeInner":
            params["subnetId"] = subnet_id
        p = validate(ServiceParams, params, "Service", name)
        backend.update_service(w, svc, spec_of(p), p.replicas, p.serviceDesc)
    if obj is None:
        return _deleted(name)
    return _now(api, KINDS["services"], namespace, name)


def create_service(api: ClusterApi, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    return put_service(api, namespace, obj, create=True)


def replace_service(
    api: ClusterApi, namespace: str, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    return put_service(api, namespace, new, create=False)


def delete_service(api: ClusterApi, namespace: str, name: str) -> dict[str, Any]:
    return put_service(api, namespace, None, create=False, delete=name)


def _check_service_object(svc: Service, obj: dict[str, Any], create: bool) -> None:
    """What a Service may say of the service it is the access of."""
    name = svc.name
    c = Conv("Service", name, "")
    spec = obj.get("spec") or {}
    for k, v in (spec.get("selector") or {}).items():
        if svc.labels.get(k) != v:
            raise c.bad(f"spec.selector[{k}]", f"must select the pods of the Deployment {name}")
    if create and ServiceSpec.from_v2(svc.spec).access_type != "None":
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


# -- the kinds' writes -------------------------------------------------------------------

WRITES: dict[str, Writes] = {
    "namespaces": Writes(
        create=create_namespace, change=_namespace_unchanged, delete=_delete_namespace
    ),
    "nodes": Writes(
        change=update_node, why="nodes are the cluster's machines (AddClusterInstances)"
    ),
    "pods": Writes(
        delete=_delete_pod,
        subresources={"eviction": Sub(create=evict)},
        why="pods belong to Deployments (create or scale a Deployment)",
    ),
    "services": Writes(create=create_service, change=replace_service, delete=delete_service),
    "endpoints": Writes(why="Endpoints follow the ready pods of a Service"),
    "events": Writes(why="events are recorded by the engine"),
    "deployments": Writes(
        create=create_deployment,
        change=update_deployment,
        delete=_delete_deployment,
        subresources={"scale": Sub(get=_get_scale, change=_scale)},
    ),
    "replicasets": Writes(why="ReplicaSets are the revisions of Deployments"),
}
