"""The workloads backend: namespaces, services (Deployments) and their instances (pods).

Every front end calls these: the v2 actions (`actions/service.py`, `actions/namespace.py`)
and the Kubernetes API (`kube/writes.py`). Inputs are typed (a checked `ServiceSpec`, names,
numbers); answers are the rows or small typed results, which each front end encodes in its
own wire format. Errors are the document's (`openccs.errors`), which the Kubernetes API
says as `Status` objects once (`kube/errors.py`).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, not_, or_, select
from sqlalchemy.orm import load_only

from openccs.backends import Work
from openccs.domain import cloud, manifests
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.engine import docker
from openccs.errors import ApiError, invalid_parameter, not_found
from openccs.store.models import Cluster, Event, Instance, K8sNamespace, Pod, ReplicaSet, Service
from openccs.subsystems import need
from openccs.timeutil import utcnow
from openccs.traffic import lb
from openccs.traffic.models import Ingress, LoadBalancer

# -- clusters and namespaces -------------------------------------------------------------


def cluster_of(w: Work, cluster_id: str) -> Cluster:
    """A cluster of the caller's account (5000 for any other)."""
    return cloud.get_cluster(w.db, w.account_id, cluster_id)


def _changeable_cluster(w: Work, cluster_id: str) -> Cluster:
    cluster = cluster_of(w, cluster_id)
    if cluster.status in ("Creating", "Deleting"):
        raise ApiError(
            5100, "ClusterStateError", f"cluster {cluster.id} is {cluster.status}: try again later"
        )
    return cluster


def namespaces(w: Work, cluster_id: str) -> list[K8sNamespace]:
    cluster = cluster_of(w, cluster_id)
    return list(
        w.db.scalars(
            select(K8sNamespace)
            .where(K8sNamespace.cluster_id == cluster.id)
            .order_by(K8sNamespace.created_at, K8sNamespace.name)
        )
    )


def create_namespace(w: Work, cluster_id: str, name: str, description: str) -> K8sNamespace:
    cluster = cluster_of(w, cluster_id)
    exists = w.db.scalars(
        select(K8sNamespace).where(K8sNamespace.cluster_id == cluster.id, K8sNamespace.name == name)
    ).first()
    if exists is not None:
        raise ApiError(
            4000, "NamespaceExists", f"namespace {name} (name) already exists in {cluster.id}"
        )
    ns = K8sNamespace(
        account_id=w.account_id, cluster_id=cluster.id, name=name, description=description
    )
    w.db.add(ns)
    return ns


def delete_namespaces(w: Work, cluster_id: str, names: Sequence[str]) -> None:
    """Each namespace (the parameter `names.n`) goes with its services and ingresses."""
    cluster = cluster_of(w, cluster_id)
    targets = []
    for i, name in enumerate(names):
        if name in wl.DEFAULT_NAMESPACES:
            raise invalid_parameter(f"names.{i}", f"namespace {name} cannot be deleted")
        if name in names[:i]:
            raise invalid_parameter(f"names.{i}", f"namespace {name} is named twice")
        targets.append(wl.get_namespace(w.db, cluster, name, f"names.{i}"))
    for ns in targets:
        # Terminating while its services go; the engine removes it once they are gone.
        ns.status = "Terminating"
        for svc in w.db.scalars(
            select(Service).where(Service.cluster_id == cluster.id, Service.namespace == ns.name)
        ):
            svc.deleting = True
        # Its ingresses go at once (their VIPs and nginx servers follow).
        w.db.execute(
            delete(Ingress).where(Ingress.cluster_id == cluster.id, Ingress.namespace == ns.name)
        )
    w.effects.wake_traffic = True


def set_namespace_description(w: Work, cluster_id: str, name: str, description: str) -> None:
    cluster = cluster_of(w, cluster_id)
    wl.get_namespace(w.db, cluster, name, "name").description = description


# -- services ----------------------------------------------------------------------------


def find_service(w: Work, cluster_id: str, namespace: str, name: str) -> Service:
    """A service of the caller's account that is not being deleted (5000 naming the cluster,
    the namespace or the service that does not exist)."""
    cluster = cluster_of(w, cluster_id)
    wl.get_namespace(w.db, cluster, namespace)
    return wl.get_service(w.db, cluster, namespace, name)


def service_or_none(w: Work, cluster_id: str, namespace: str, name: str) -> Service | None:
    """The service of that name, None if there is none (or it is being deleted)."""
    return wl.service_named(w.db, cluster_of(w, cluster_id).id, namespace, name)


def is_being_deleted(w: Work, cluster_id: str, namespace: str, name: str) -> bool:
    return (
        wl.service_named(w.db, cluster_of(w, cluster_id).id, namespace, name, deleting=True)
        is not None
    )


def services(w: Work, cluster_id: str, namespace: str | None) -> list[Service]:
    """The services of a namespace (all namespaces with None), oldest first."""
    cluster = cluster_of(w, cluster_id)
    q = select(Service).where(Service.cluster_id == cluster.id, Service.deleting.is_(False))
    if namespace is not None:
        wl.get_namespace(w.db, cluster, namespace)
        q = q.where(Service.namespace == namespace)
    return list(w.db.scalars(q.order_by(Service.created_at)))


@dataclass(frozen=True)
class ServiceState:
    """What a service is doing: the document's status and reasons, its ready pods, its
    balancer."""

    status: str
    reasons: dict[str, int]
    ready: int
    balancer: LoadBalancer | None


def service_states(w: Work, found: Sequence[Service]) -> list[ServiceState]:
    """The state of each of `found` (services of one cluster), in four queries whatever
    the number of services and pods: the live pods counted in SQL by service and replica
    set, the statuses of those not ready (a ready pod has every container Running, so no
    reason to give), the replica sets' hashes, and the balancers."""
    if not found:
        return []
    cluster_id = found[0].cluster_id
    assert all(svc.cluster_id == cluster_id for svc in found)
    if len(found) == 1:
        pod_scope = Pod.service_id == found[0].id
        rs_scope = ReplicaSet.service_id == found[0].id
        lb_scope = LoadBalancer.service_id == found[0].id
    else:  # the cluster's rows; those of services not asked for are left aside
        pod_scope = Pod.cluster_id == cluster_id
        rs_scope = ReplicaSet.service_id.in_(
            select(Service.id).where(Service.cluster_id == cluster_id)
        )
        lb_scope = LoadBalancer.cluster_id == cluster_id
    ready = Pod.status["ready"].as_boolean()
    live = Pod.deleting.is_(False)
    tallies: dict[int, wl.PodTally] = {svc.id: wl.PodTally() for svc in found}
    counted = w.db.execute(
        select(Pod.service_id, Pod.replicaset_id, func.count(), func.sum(case((ready, 1), else_=0)))
        .where(pod_scope, live)
        .group_by(Pod.service_id, Pod.replicaset_id)
    )
    for service_id, rs_id, pods, ready_pods in counted:
        if (tally := tallies.get(service_id or 0)) is not None:
            tally.live[rs_id] = pods
            tally.ready += int(ready_pods or 0)
    waiting = w.db.execute(
        select(Pod.service_id, Pod.node_id, Pod.status)
        .where(pod_scope, live, or_(Pod.node_id.is_(None), not_(func.coalesce(ready, False))))
        .order_by(Pod.created_at, Pod.id)
    )
    for service_id, node_id, status in waiting:
        if (tally := tallies.get(service_id or 0)) is not None:
            tally.add_reasons(status, scheduled=bool(node_id))
    wanted = {svc.id: wl.template_hash(wl.template_of(svc.spec, svc.restarted_at)) for svc in found}
    current: dict[int, int] = {}
    hashes = w.db.execute(
        select(ReplicaSet.service_id, ReplicaSet.id, ReplicaSet.template_hash)
        .where(rs_scope)
        .order_by(ReplicaSet.service_id, ReplicaSet.revision)
    )
    for service_id, rs_id, rs_hash in hashes:
        if wanted.get(service_id) == rs_hash:
            current.setdefault(service_id, rs_id)
    balancers = {b.service_id: b for b in w.db.scalars(select(LoadBalancer).where(lb_scope))}
    return [
        ServiceState(
            wl.service_status(svc, tallies[svc.id], current.get(svc.id)),
            tallies[svc.id].reasons,
            tallies[svc.id].ready,
            balancers.get(svc.id),
        )
        for svc in found
    ]


def _allocate_cluster_ip(w: Work, cluster: Cluster) -> str:
    taken = set(w.db.scalars(select(Service.cluster_ip).where(Service.cluster_id == cluster.id)))
    net = ipaddress.ip_network(cluster.service_cidr)
    for addr in list(net.hosts())[9:]:  # the first few are kept for cluster services (DNS)
        if str(addr) not in taken:
            return str(addr)
    raise ApiError(5200, "ServiceIpExhausted", f"no service IP left in {cluster.service_cidr}")


def _check_privileged(w: Work, spec: ServiceSpec) -> None:
    """Machines share this host's kernel and devices: a privileged container is root on the
    host, so it is the operator's choice (`--allow-privileged`), not a tenant's."""
    if w.services.settings.allow_privileged:
        return
    for i, c in enumerate(spec.containers):
        if c.privileged:
            raise invalid_parameter(
                f"containers.{i}.privileged",
                "privileged containers are not allowed on this openccs (they would have root"
                " on its host); the operator can allow them with `openccs serve"
                " --allow-privileged`",
            )


def _set_spec(
    w: Work, cluster: Cluster, svc: Service, spec: ServiceSpec, old: dict[str, Any] | None
) -> None:
    """A new spec with its access: the service IP, node ports (a port keeps the node port
    it had in `old`) and the load balancer."""
    if spec.access_type != "None" and not svc.cluster_ip:
        svc.cluster_ip = _allocate_cluster_ip(w, cluster)
    elif spec.access_type == "None":
        svc.cluster_ip = None
    before = ServiceSpec.from_v2(old) if old is not None else None
    spec = lb.assign_node_ports(w.db, w.services.settings, cluster.id, spec, svc.id, before)
    svc.spec = spec.to_v2()
    lb.ensure_service_lb(w.db, w.services.settings, cluster, svc)


def create_service(
    w: Work,
    cluster_id: str,
    namespace: str,
    name: str,
    spec: ServiceSpec,
    replicas: int,
    description: str = "",
    labels: dict[str, str] | None = None,
    paused: bool = False,
) -> Service:
    _check_privileged(w, spec)
    cluster = _changeable_cluster(w, cluster_id)
    wl.active_namespace(w.db, cluster, namespace)
    if wl.service_named(w.db, cluster.id, namespace, name, deleting=None) is not None:
        raise ApiError(
            4000, "ServiceExists", f"service {name} (serviceName) already exists in {namespace}"
        )
    svc = Service(
        account_id=w.account_id,
        cluster_id=cluster.id,
        namespace=namespace,
        name=name,
        description=description,
        spec=spec.to_v2(),
        labels={wl.APP_LABEL: name, **(labels or {})},
        replicas=replicas,
        paused=paused,
        cluster_ip=_allocate_cluster_ip(w, cluster) if spec.access_type != "None" else None,
    )
    w.db.add(svc)
    w.db.flush()
    _set_spec(w, cluster, svc, spec, None)
    return svc


def update_service(
    w: Work, svc: Service, spec: ServiceSpec, replicas: int, description: str
) -> None:
    """The whole service again (ModifyClusterService, a Deployment's or a Service's update)."""
    _check_privileged(w, spec)
    cluster = cluster_of(w, svc.cluster_id)
    _set_spec(w, cluster, svc, spec, svc.spec)
    svc.description = description
    svc.replicas = replicas
    svc.operation = ""
    svc.updated_at = utcnow()


def delete_service(w: Work, svc: Service) -> None:
    svc.deleting = True


def scale(w: Work, svc: Service, replicas: int) -> None:
    svc.replicas = replicas
    svc.updated_at = utcnow()


def set_description(w: Work, svc: Service, description: str) -> None:
    svc.description = description


def set_images(w: Work, svc: Service, changes: Sequence[tuple[str, str]]) -> None:
    """Containers (by name; the parameter `containers.n`) on new images: a new revision
    rolls out."""
    spec = ServiceSpec.from_v2(svc.spec)
    images: dict[str, str] = {}
    for i, (name, image) in enumerate(changes):
        if spec.container(name) is None:
            raise invalid_parameter(f"containers.{i}.containerName", f"no container {name!r}")
        if name in images:
            raise invalid_parameter(f"containers.{i}.containerName", f"{name} given twice")
        images[name] = image
    wl.set_images(svc, images)


def set_labels(w: Work, svc: Service, labels: dict[str, str]) -> None:
    """The service's own labels; the system's label (its name) stays."""
    svc.labels = {wl.APP_LABEL: svc.name, **labels}


def rollback(w: Work, svc: Service, target: ReplicaSet | None = None) -> None:
    """Back to a revision (by default the one before the current), as `kubectl rollout undo`:
    that revision becomes the newest, as in Kubernetes."""
    revs = wl.revisions(w.db, svc)
    if target is None:
        current = wl.current_replicaset(w.db, svc)
        older = [rs for rs in revs if current is None or rs.revision < current.revision]
        if not older:
            raise ApiError(
                5100, "NoRevisionToRollBack", f"service {svc.name} has no earlier revision"
            )
        target = older[-1]
    # The revision's template as it was stored (its hash must be found again).
    kept = {k: target.template.get(k) for k in wl.TEMPLATE_KEYS if k != "restartedAt"}
    svc.spec = {**svc.spec, **kept}
    svc.restarted_at = target.template.get("restartedAt", "")
    target.revision = max(rs.revision for rs in revs) + 1
    svc.operation = "RollingBack"
    svc.paused = False
    svc.updated_at = utcnow()


def redeploy(w: Work, svc: Service) -> None:
    """Every pod made again with the current spec (images pulled again)."""
    svc.restarted_at = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")


def pause(w: Work, svc: Service) -> None:
    if svc.paused:
        raise ApiError(5100, "ServicePaused", f"service {svc.name} is already paused")
    svc.paused = True


def resume(w: Work, svc: Service) -> None:
    if not svc.paused:
        raise ApiError(5100, "ServiceNotPaused", f"service {svc.name} is not paused")
    svc.paused = False


def service_texts(w: Work, svc: Service) -> tuple[str, str]:
    """The service as Kubernetes YAML: (with metadata and status, without)."""
    current = wl.current_replicaset(w.db, svc)
    return manifests.texts(svc, wl.service_pods(w.db, svc), current.revision if current else 1)


def events(w: Work, svc: Service) -> list[Event]:
    """The service's events of the last hour, newest first."""
    since = utcnow() - datetime.timedelta(hours=1)
    return list(
        w.db.scalars(
            select(Event)
            .where(
                Event.cluster_id == svc.cluster_id,
                Event.namespace == svc.namespace,
                Event.service == svc.name,
                Event.last_seen >= since,
            )
            .order_by(Event.last_seen.desc())
        )
    )


# -- instances ---------------------------------------------------------------------------


def instances(w: Work, svc: Service, offset: int, limit: int) -> tuple[int, list[tuple[Pod, str]]]:
    """How many pods the service has, and a page of them (oldest first), each with the LAN
    address of its machine ("" while it has none): two queries whatever the number of pods,
    reading only the columns an instance is described with."""
    total = w.db.scalar(select(func.count()).select_from(Pod).where(Pod.service_id == svc.id))
    page = w.db.execute(
        select(Pod, Instance.lan_ip)
        .outerjoin(
            Instance, and_(Instance.id == Pod.node_id, Instance.cluster_id == svc.cluster_id)
        )
        .where(Pod.service_id == svc.id)
        .order_by(Pod.created_at, Pod.id)
        .offset(offset)
        .limit(limit)
        .options(load_only(Pod.name, Pod.status, Pod.node_id, Pod.deleting, Pod.created_at))
    )
    return total or 0, [(pod, ip or "") for pod, ip in page]


def _pod(w: Work, cluster_id: str, namespace: str, name: str) -> Pod | None:
    return w.db.scalars(
        select(Pod).where(
            Pod.cluster_id == cluster_id, Pod.namespace == namespace, Pod.name == name
        )
    ).first()


def delete_instances(
    w: Work, cluster_id: str, namespace: str, names: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """Pods (the parameter `instances.n`) deleted, their service makes others: the names
    done, and why each other one was not."""
    cluster = cluster_of(w, cluster_id)
    wl.get_namespace(w.db, cluster, namespace)
    for i, name in enumerate(names):
        if name in names[:i]:
            raise invalid_parameter(f"instances.{i}", f"instance {name} is named twice")
    done, failed = [], {}
    for name in names:
        pod = _pod(w, cluster.id, namespace, name)
        if pod is None:
            failed[name] = f"instance {name} does not exist in namespace {namespace}"
        elif pod.deleting:
            failed[name] = f"instance {name} is already being deleted"
        else:
            pod.deleting = True
            done.append(name)
    return done, failed


def evict(w: Work, cluster_id: str, namespace: str, name: str) -> bool:
    """A pod goes and its service makes another on a schedulable node (a drain's step);
    False if there is no such pod."""
    pod = _pod(w, cluster_of(w, cluster_id).id, namespace, name)
    if pod is None:
        return False
    pod.deleting = True
    return True


@dataclass(frozen=True)
class ContainerLog:
    name: str
    text: str
    restart_count: int = 0


@dataclass(frozen=True)
class PodLog:
    name: str
    containers: list[ContainerLog]


def _live_pods(w: Work, svc: Service, container: str | None, pod_name: str | None) -> list[Pod]:
    """The service's pods that are not being deleted (the one named, if one is), after
    checking the container name against the spec."""
    if container and ServiceSpec.from_v2(svc.spec).container(container) is None:
        raise not_found("container (containerName)", f"{container} in service {svc.name}")
    pods = [p for p in wl.service_pods(w.db, svc) if not p.deleting]
    if pod_name:
        pods = [p for p in pods if p.name == pod_name]
        if not pods:
            raise not_found("instance (podName)", pod_name)
    return pods


def instance_logs(
    w: Work,
    svc: Service,
    pod_name: str | None,
    container: str | None,
    since: int | None,
    tail: int | None,
) -> list[PodLog]:
    """The logs of a service's containers (one pod, one container, or all). Read, then ask the
    machines' dockerds outside the transaction."""
    # (pod, [(container, node id, container id)])
    plan: list[tuple[str, list[tuple[str, str, str]]]] = []
    for pod in _live_pods(w, svc, container, pod_name):
        wanted = []
        for c in pod.status.get("containers", []):
            if container and c["name"] != container:
                continue
            wanted.append((c["name"], pod.node_id or "", c.get("containerId") or ""))
        plan.append((pod.name, wanted))
    cloud_ = need(w.services.subsystems.cloud, "cloud")
    result = []
    with w.outside():
        for name, wanted in plan:
            logs = []
            for cname, node_id, container_id in wanted:
                text = ""
                if container_id and node_id:
                    sock = cloud_.engine.docker_socket(node_id)
                    text = docker.logs(sock, container_id, since=since, tail=tail)
                logs.append(ContainerLog(cname, text))
            result.append(PodLog(name, logs))
    return result


def previous_logs(
    w: Work, svc: Service, pod_name: str, container: str | None, tail: int | None
) -> PodLog:
    """The logs of a pod's containers' previous run (`kubectl logs --previous`); a container
    that has not ended once is left out. Read, then ask the dockerd
    outside the transaction."""
    pod = _live_pods(w, svc, container, pod_name)[0]
    # (container, restarts, the current run's id when it runs: not a previous one)
    wanted = [
        (
            c["name"],
            int(c.get("restartCount", 0)),
            c.get("containerId", "") if c.get("status") == "Running" else "",
        )
        for c in pod.status.get("containers", [])
        if not container or c["name"] == container
    ]
    name, uid, node_id = pod.name, pod.uid, pod.node_id
    logs = []
    if node_id:
        sock = need(w.services.subsystems.cloud, "cloud").engine.docker_socket(node_id)
        with w.outside():
            for cname, restarts, current in wanted:
                found = docker.previous_container(sock, uid, cname, current)
                if found is not None:
                    logs.append(ContainerLog(cname, docker.logs(sock, found, tail=tail), restarts))
    return PodLog(name, logs)
