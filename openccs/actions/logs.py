"""Log collection actions: rules that ship a cluster's container logs or machine files into
Kafka. The first rule of a cluster starts a shipper on every machine; the last one's deletion
stops them (GetLogDaemonStatus shows how many run)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from openccs.api.context import RequestContext
from openccs.api.params import Array, Paged, Params, StrMap
from openccs.api.registry import action
from openccs.domain import cloud
from openccs.errors import ApiError, invalid_parameter, missing_parameter
from openccs.logs import rules
from openccs.logs.models import LogCollector
from openccs.store.models import Cluster
from openccs.timeutil import fmt_time

RULE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Host names and IPv4 addresses; Kafka topic names.
HOST = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
TOPIC = r"^[A-Za-z0-9._-]+$"
LABEL_KEY = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


class NamespaceOption(Params):
    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    allContainers: bool
    services: Array[str] = []


class ContainerLogInput(Params):
    allNamespaces: bool
    namespaces: Array[NamespaceOption] = []


class HostLogInput(Params):
    path: str = Field(min_length=2, max_length=1024, pattern=r"^/")
    labels: StrMap = {}


class KafkaOutput(Params):
    host: str = Field(min_length=1, max_length=253, pattern=HOST)
    port: int = Field(ge=1, le=65535)
    topic: str = Field(min_length=1, max_length=249, pattern=TOPIC)


class CKafkaOutput(KafkaOutput):
    instanceId: str = Field(min_length=1, max_length=64)
    topicId: str = Field(min_length=1, max_length=64)


INPUTS: dict[str, type[Params]] = {"container-log": ContainerLogInput, "host-log": HostLogInput}
OUTPUTS: dict[str, type[Params]] = {"kafka": KafkaOutput, "ckafka": CKafkaOutput}


def _flat_option(value: str) -> dict[str, Any]:
    key, _, val = value.partition("=")
    return {key: val}


class RuleRef(Params):
    clusterId: str
    name: str = Field(min_length=1, max_length=63)


class CollectorParams(Params):
    clusterId: str
    name: str = Field(min_length=1, max_length=63, pattern=RULE_NAME)
    description: str = Field(default="", max_length=1024)
    inputType: Literal["container-log", "host-log"]
    outputType: Literal["kafka", "ckafka", "cls"]
    inputOption: Any = None
    outputOption: Any = None

    @model_validator(mode="before")
    @classmethod
    def _document_example_shape(cls, data: Any) -> Any:
        """The document's UpdateLogCollector example sends `inputOption=allNamespaces=false`
        with the option's other fields at top level (`namespaces.0.namespace=...`,
        `topicId=...`): read that shape as the nested one it means."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, fields in (
            ("inputOption", ("allNamespaces", "namespaces", "path", "labels")),
            ("outputOption", ("host", "port", "topic", "instanceId", "topicId", "logsetId")),
        ):
            given = data.get(name)
            if isinstance(given, str) and "=" in given:
                option = _flat_option(given)
                for f in fields:
                    if f in data and f not in option:
                        option[f] = data[f]
                data[name] = option
        return data


def _validate_option(model: type[Params], value: Any, prefix: str) -> Any:
    if value is None:
        raise missing_parameter(prefix)
    if not isinstance(value, dict):
        raise invalid_parameter(prefix, f"must be an object ({prefix}.field=value)")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = ".".join([prefix, *(str(p) for p in err["loc"])])
        if err["type"] == "missing":
            raise missing_parameter(name) from None
        given = err.get("input")
        shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
        raise invalid_parameter(name, err["msg"] + shown) from None


def _input_option(ctx: RequestContext, cluster: Cluster, p: CollectorParams) -> dict[str, Any]:
    where = "inputOption"
    if p.inputType == "host-log":
        host = _validate_option(HostLogInput, p.inputOption, where)
        assert isinstance(host, HostLogInput)
        if "\0" in host.path or ".." in host.path.split("/") or host.path.endswith("/"):
            raise invalid_parameter(
                f"{where}.path", "an absolute file path or glob, without '..', not a directory"
            )
        for key, value in host.labels.items():
            if len(key) > 63 or not re.match(LABEL_KEY, key):
                raise invalid_parameter(f"{where}.labels.{key}", "not a valid label key")
            if len(value) > 1024:
                raise invalid_parameter(f"{where}.labels.{key}", "at most 1024 characters")
        return {"path": host.path, "labels": dict(host.labels)}
    opt = _validate_option(ContainerLogInput, p.inputOption, where)
    assert isinstance(opt, ContainerLogInput)
    if opt.allNamespaces:
        if opt.namespaces:
            raise invalid_parameter(f"{where}.namespaces", "only with allNamespaces=false")
        return {"allNamespaces": True}
    if not opt.namespaces:
        raise invalid_parameter(
            f"{where}.namespaces", "required when allNamespaces is false (at least one)"
        )
    existing = rules.cluster_namespaces(ctx.db, cluster.id)
    seen: set[str] = set()
    namespaces = []
    for i, ns in enumerate(opt.namespaces):
        at = f"{where}.namespaces.{i}"
        if ns.namespace in seen:
            raise invalid_parameter(f"{at}.namespace", f"{ns.namespace} given twice")
        seen.add(ns.namespace)
        if ns.namespace not in existing:
            raise invalid_parameter(
                f"{at}.namespace", f"no namespace {ns.namespace} in cluster {cluster.id}"
            )
        if ns.allContainers and ns.services:
            raise invalid_parameter(f"{at}.services", "only with allContainers=false")
        if not ns.allContainers and not ns.services:
            raise invalid_parameter(
                f"{at}.services", "required when allContainers is false (at least one service)"
            )
        for j, svc in enumerate(ns.services):
            if len(svc) > 63 or not re.match(SERVICE_NAME, svc):
                raise invalid_parameter(f"{at}.services.{j}", f"{svc!r} is not a service name")
        if len(set(ns.services)) != len(ns.services):
            raise invalid_parameter(f"{at}.services", "a service is given twice")
        namespaces.append(
            {
                "namespace": ns.namespace,
                "allContainers": ns.allContainers,
                "services": list(ns.services),
            }
        )
    return {"allNamespaces": False, "namespaces": namespaces}


def _spec(ctx: RequestContext, cluster: Cluster, p: CollectorParams) -> rules.CollectorSpec:
    return rules.CollectorSpec(
        description=p.description,
        input_type=p.inputType,
        output_type=p.outputType,
        input_option=_input_option(ctx, cluster, p),
        output_option=_output_option(p),
    )


def _output_option(p: CollectorParams) -> dict[str, Any]:
    if p.outputType == "cls":
        raise invalid_parameter(
            "outputType",
            "cls: this deployment has no CLS (Cloud Log Service); ship to kafka or ckafka",
        )
    out = _validate_option(OUTPUTS[p.outputType], p.outputOption, "outputOption")
    return dict(out.model_dump())


def _cluster(ctx: RequestContext, cluster_id: str, changing: bool = False) -> Cluster:
    cluster = cloud.get_cluster(ctx.db, ctx.account_id, cluster_id)
    if changing and cluster.status in ("Creating", "Deleting"):
        raise ApiError(
            5100, "ClusterStateError", f"cluster {cluster.id} is {cluster.status}: try again later"
        )
    return cluster


def _view(rule: LogCollector, cluster: Cluster) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "clusterId": cluster.id,
        "clusterName": cluster.name,
        "createdAt": fmt_time(rule.created_at),
        "inputType": rule.input_type,
        "outputType": rule.output_type,
        "inputOption": rule.input_option,
        "outputOption": rule.output_option,
    }


def _wake(ctx: RequestContext) -> None:
    services = ctx.services
    ctx.on_commit(lambda: rules.wake(services))


@action("CreateLogCollector", CollectorParams, resources=("clusterId",))
def create_collector(ctx: RequestContext, p: CollectorParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId, changing=True)
    rule = rules.create_collector(
        ctx.db, ctx.account_id, cluster.id, p.name, _spec(ctx, cluster, p)
    )
    _wake(ctx)
    return {"logCollectorList": _view(rule, cluster)}


@action("UpdateLogCollector", CollectorParams, resources=("clusterId",))
def update_collector(ctx: RequestContext, p: CollectorParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId, changing=True)
    rule = rules.get_collector(ctx.db, cluster.id, p.name)
    rules.update_collector(ctx.db, rule, _spec(ctx, cluster, p))
    _wake(ctx)
    return {"logCollectorList": _view(rule, cluster)}


class ListParams(Paged):
    clusterId: str


@action("ListLogCollector", ListParams, resources=("clusterId",), inline=True)
def list_collectors(ctx: RequestContext, p: ListParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    total, page = rules.list_collectors(ctx.db, cluster.id, p.offset, p.limit)
    return {"logCollectorList": [_view(r, cluster) for r in page], "totalCount": total}


@action("GetLogCollector", RuleRef, resources=("clusterId",), inline=True)
def get_collector(ctx: RequestContext, p: RuleRef) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    return {"logCollectorList": _view(rules.get_collector(ctx.db, cluster.id, p.name), cluster)}


@action("CheckIfLogCollectorName", RuleRef, resources=("clusterId",), inline=True)
def check_name(ctx: RequestContext, p: RuleRef) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    found = rules.collector_by_name(ctx.db, cluster.id, p.name)
    return {"checkResult": found is not None}


@action("DeleteLogCollector", RuleRef, resources=("clusterId",))
def delete_collector(ctx: RequestContext, p: RuleRef) -> None:
    cluster = _cluster(ctx, p.clusterId)
    rules.delete_collector(ctx.db, rules.get_collector(ctx.db, cluster.id, p.name))
    _wake(ctx)


class StatusParams(Params):
    clusterId: str


@action("GetLogDaemonStatus", StatusParams, resources=("clusterId",), inline=True)
def daemon_status(ctx: RequestContext, p: StatusParams) -> dict[str, Any]:
    cluster = _cluster(ctx, p.clusterId)
    return rules.daemon_status(ctx.db, ctx.services, cluster.id)
