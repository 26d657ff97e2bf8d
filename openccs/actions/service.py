"""Service and instance actions: a service is a Deployment whose pods run on the cluster's
machines; its instances are the pods. Each action decodes its parameters, calls the
workloads backend (`backends/workloads.py`) and encodes the answer."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from pydantic import AliasChoices, Field

from openccs import timeutil
from openccs.api.context import RequestContext
from openccs.api.params import Array, Paged, Params
from openccs.api.registry import action
from openccs.backends import workloads as backend
from openccs.backends.inputs import (
    ClusterId,
    ContainerName,
    Description,
    Image,
    NamespaceName,
    PodName,
    ServiceName,
)
from openccs.backends.workload_params import ImageChange, ServiceLabels, ServiceParams, spec_of
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec, typed_spec
from openccs.errors import invalid_parameter
from openccs.store.models import Service
from openccs.timeutil import fmt_time, utcnow


@action("CreateClusterService", ServiceParams, resources=("clusterId",))
def create_service(ctx: RequestContext, p: ServiceParams) -> None:
    backend.create_service(
        ctx.work(),
        p.clusterId,
        p.namespace,
        p.serviceName,
        spec_of(p),
        p.replicas,
        description=p.serviceDesc,
    )


class ServiceRef(Params):
    clusterId: ClusterId
    serviceName: ServiceName
    namespace: NamespaceName = "default"


def _service(ctx: RequestContext, p: ServiceRef | ServiceParams) -> Service:
    return backend.find_service(ctx.work(), p.clusterId, p.namespace, p.serviceName)


def _summary(svc: Service, state: backend.ServiceState) -> dict[str, Any]:
    balancer = state.balancer
    return {
        "serviceName": svc.name,
        "status": state.status,
        "reasonMap": state.reasons,
        "serviceIp": svc.cluster_ip or "",
        "externalIp": balancer.vip if balancer else "",
        "lbId": balancer.id if balancer else "",
        "lbStatus": balancer.status if balancer else "None",
        "accessType": typed_spec(svc.id, svc.spec).access_type,
        "desiredReplicas": svc.replicas,
        "currentReplicas": state.ready,
        "createdAt": fmt_time(svc.created_at),
        "namespace": svc.namespace,
    }


class DescribeServicesParams(Params):
    clusterId: ClusterId
    namespace: NamespaceName = "default"
    allnamespace: int = Field(default=0, ge=0, le=1)


@action("DescribeClusterService", DescribeServicesParams, resources=("clusterId",), inline=True)
def describe_services(ctx: RequestContext, p: DescribeServicesParams) -> dict[str, Any]:
    w = ctx.work()
    found = backend.services(w, p.clusterId, None if p.allnamespace else p.namespace)
    states = backend.service_states(w, found)
    services = [_summary(svc, state) for svc, state in zip(found, states, strict=True)]
    return {"totalCount": len(services), "services": services}


@action("DescribeClusterServiceInfo", ServiceRef, resources=("clusterId",), inline=True)
def describe_service_info(ctx: RequestContext, p: ServiceRef) -> dict[str, Any]:
    svc = _service(ctx, p)
    info = _summary(svc, backend.service_states(ctx.work(), [svc])[0])
    spec = typed_spec(svc.id, svc.spec)
    info.update(
        serviceDesc=svc.description,
        reason=next(iter(info["reasonMap"]), ""),
        regionId=ctx.services.settings.regions[0].region_id,
        portMappings=[pm.to_v2() for pm in spec.ports],
        volumes=[v.to_v2() for v in spec.volumes],
        containers=[c.to_v2() for c in spec.containers],
        labels=dict(svc.labels),
        selector={wl.APP_LABEL: svc.name},
        subnetId=spec.subnet_id,
        unHubId="",
        strategy=spec.strategy,
        minReadySeconds=spec.min_ready_seconds,
        nodeAffinity=[a.to_v2() for a in spec.node_affinity],
        podAffinity=[a.to_v2() for a in spec.pod_affinity],
    )
    return {"service": info}


@action("DeleteClusterService", ServiceRef, resources=("clusterId",))
def delete_service(ctx: RequestContext, p: ServiceRef) -> None:
    backend.delete_service(ctx.work(), _service(ctx, p))


class ReplicasParams(ServiceRef):
    scaleTo: int = Field(ge=0, le=1000, validation_alias=AliasChoices("scaleTo", "replicas"))


@action("ModifyServiceReplicas", ReplicasParams, resources=("clusterId",))
def modify_replicas(ctx: RequestContext, p: ReplicasParams) -> None:
    backend.scale(ctx.work(), _service(ctx, p), p.scaleTo)


class DescribeInstancesParams(ServiceRef, Paged):
    pass


@action("DescribeServiceInstance", DescribeInstancesParams, resources=("clusterId",), inline=True)
def describe_instances(ctx: RequestContext, p: DescribeInstancesParams) -> dict[str, Any]:
    total, page = backend.instances(ctx.work(), _service(ctx, p), p.offset, p.limit)
    return {"totalCount": total, "instances": [wl.describe_instance(*row) for row in page]}


class DeleteInstancesParams(Params):
    clusterId: ClusterId
    instances: Array[PodName] = Field(min_length=1, max_length=100)
    namespace: NamespaceName = "default"


@action("DeleteInstances", DeleteInstancesParams, resources=("clusterId",))
def delete_instances(ctx: RequestContext, p: DeleteInstancesParams) -> dict[str, Any]:
    done, failed = backend.delete_instances(ctx.work(), p.clusterId, p.namespace, p.instances)
    return {"successList": done, "failedMap": failed}


class DescribeEventsParams(ServiceRef):
    pass


@action("DescribeServiceEvent", DescribeEventsParams, resources=("clusterId",), inline=True)
def describe_events(ctx: RequestContext, p: DescribeEventsParams) -> dict[str, Any]:
    events = backend.events(ctx.work(), _service(ctx, p))
    return {"eventList": [wl.describe_event(ev) for ev in events]}


class InstanceLogParams(ServiceRef):
    podName: PodName | None = None
    containerName: ContainerName | None = None
    sinceTime: str | None = None
    tail: int | None = Field(default=None, ge=0, le=100_000)


def _since(text: str | None) -> int | None:
    """sinceTime (local time of the API's zone) as a Unix time."""
    if not text:
        return None
    try:
        local = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise invalid_parameter("sinceTime", "use the form 2006-01-02 15:04:05") from None
    since = int(local.replace(tzinfo=timeutil.zone()).timestamp())
    if since > int(utcnow().replace(tzinfo=datetime.UTC).timestamp()) + 1:
        raise invalid_parameter("sinceTime", "must not be in the future")
    return since


@action("DescribeInstanceLog", InstanceLogParams, resources=("clusterId",))
def describe_instance_log(ctx: RequestContext, p: InstanceLogParams) -> dict[str, Any]:
    svc = _service(ctx, p)
    since = _since(p.sinceTime)
    logs = backend.instance_logs(ctx.work(), svc, p.podName, p.containerName, since, p.tail)
    return {
        "podLog": [
            {
                "name": pod.name,
                "containerLog": [{"name": c.name, "log": c.text} for c in pod.containers],
            }
            for pod in logs
        ]
    }


class PreviousLogParams(ServiceRef):
    podName: PodName
    containerName: ContainerName | None = None
    tail: int | None = Field(default=None, ge=0, le=100_000)


@action(
    "OpenccsDescribeInstancePreviousLog",
    PreviousLogParams,
    host="ccs.api.qcloud.com",
    resources=("clusterId",),
    extension=True,
)
def describe_instance_previous_log(ctx: RequestContext, p: PreviousLogParams) -> dict[str, Any]:
    """The logs of a pod's containers' previous run (the one that exited or crashed before
    the current one), as `kubectl logs --previous`; a container that has not ended once is
    left out."""
    svc = _service(ctx, p)
    pod = backend.previous_logs(ctx.work(), svc, p.podName, p.containerName, p.tail)
    return {
        "podLog": [
            {
                "name": pod.name,
                "containerLog": [
                    {"name": c.name, "restartCount": c.restart_count, "log": c.text}
                    for c in pod.containers
                ],
            }
        ]
    }


@action("ModifyClusterService", ServiceParams, resources=("clusterId",))
def modify_service(ctx: RequestContext, p: ServiceParams) -> None:
    """The whole service again, in the create shape or the describe shape."""
    svc = _service(ctx, p)
    spec = spec_of(p)
    # What the request leaves out of the update strategy stays as it was (a client sending
    # the create shape must not turn a Recreate service into a RollingUpdate one).
    current = ServiceSpec.from_v2(svc.spec)
    if "strategy" not in p.model_fields_set and "strategy" in svc.spec:
        spec = replace(spec, strategy=current.strategy)
    if "minReadySeconds" not in p.model_fields_set and "minReadySeconds" in svc.spec:
        spec = replace(spec, min_ready_seconds=current.min_ready_seconds)
    backend.update_service(ctx.work(), svc, spec, p.replicas, p.serviceDesc)


class DescriptionParams(ServiceRef):
    description: Description = ""


@action("ModifyServiceDescription", DescriptionParams, resources=("clusterId",))
def modify_description(ctx: RequestContext, p: DescriptionParams) -> None:
    backend.set_description(ctx.work(), _service(ctx, p), p.description)


class ImageParams(ServiceRef):
    image: Image | None = None
    containers: Array[ImageChange] = []


@action("ModifyClusterServiceImage", ImageParams, resources=("clusterId",))
def modify_image(ctx: RequestContext, p: ImageParams) -> None:
    svc = _service(ctx, p)
    if p.image is not None:
        if p.containers:
            raise invalid_parameter("containers", "give image or containers, not both")
        containers = ServiceSpec.from_v2(svc.spec).containers
        if len(containers) != 1:
            raise invalid_parameter(
                "image", f"the service has {len(containers)} containers: use containers.n instead"
            )
        changes = [(containers[0].name, p.image)]
    elif p.containers:
        changes = [(c.containerName, c.image) for c in p.containers]
    else:
        raise invalid_parameter("image", "give image (one container) or containers.n")
    backend.set_images(ctx.work(), svc, changes)


class LabelsParams(ServiceRef, ServiceLabels):
    pass


@action("ModifyServiceLabels", LabelsParams, resources=("clusterId",))
def modify_labels(ctx: RequestContext, p: LabelsParams) -> dict[str, Any]:
    svc = _service(ctx, p)
    backend.set_labels(ctx.work(), svc, dict(p.labels))
    return {
        "labels": dict(svc.labels),
        "sysLabels": {wl.APP_LABEL: svc.name},
        "userLabels": dict(p.labels),
    }


@action("RollBackClusterService", ServiceRef, resources=("clusterId",))
def rollback(ctx: RequestContext, p: ServiceRef) -> None:
    """Back to the revision before the current one, as `kubectl rollout undo`."""
    backend.rollback(ctx.work(), _service(ctx, p))


@action("RedeployClusterService", ServiceRef, resources=("clusterId",))
def redeploy(ctx: RequestContext, p: ServiceRef) -> None:
    backend.redeploy(ctx.work(), _service(ctx, p))


@action("PauseClusterService", ServiceRef, resources=("clusterId",))
def pause(ctx: RequestContext, p: ServiceRef) -> None:
    backend.pause(ctx.work(), _service(ctx, p))


@action("ResumeClusterService", ServiceRef, resources=("clusterId",))
def resume(ctx: RequestContext, p: ServiceRef) -> None:
    backend.resume(ctx.work(), _service(ctx, p))


class TextParams(ServiceRef):
    bSimple: int = Field(default=0, ge=0, le=1)


@action("DescribeClusterServiceText", TextParams, resources=("clusterId",), inline=True)
def describe_text(ctx: RequestContext, p: TextParams) -> dict[str, Any]:
    full, pure = backend.service_texts(ctx.work(), _service(ctx, p))
    return {"serviceText": pure if p.bSimple else full, "servicePureText": pure}
