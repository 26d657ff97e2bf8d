"""Log collection actions: rules that ship a cluster's container logs or machine files into
Kafka. The first rule of a cluster starts a shipper on every machine; the last one's deletion
stops them (GetLogDaemonStatus shows how many run). Each action decodes its parameters (the
options' shapes), calls the logs backend (`backends/logs.py`: the rules) and encodes the
answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from openccs.api.context import RequestContext
from openccs.api.params import Array, Paged, Params, StrMap
from openccs.api.registry import action
from openccs.backends import logs as backend
from openccs.errors import invalid_parameter, missing_parameter
from openccs.timeutil import fmt_time

RULE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Host names and IPv4 addresses; Kafka topic names.
HOST = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
TOPIC = r"^[A-Za-z0-9._-]+$"


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


OUTPUTS: dict[str, type[KafkaOutput]] = {"kafka": KafkaOutput, "ckafka": CKafkaOutput}


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


def _input(p: CollectorParams) -> backend.ContainerLogs | backend.HostLogs:
    where = "inputOption"
    if p.inputType == "host-log":
        host = _validate_option(HostLogInput, p.inputOption, where)
        assert isinstance(host, HostLogInput)
        return backend.HostLogs(path=host.path, labels=dict(host.labels))
    opt = _validate_option(ContainerLogInput, p.inputOption, where)
    assert isinstance(opt, ContainerLogInput)
    return backend.ContainerLogs(
        all_namespaces=opt.allNamespaces,
        namespaces=tuple(
            backend.NamespaceLogs(ns.namespace, ns.allContainers, tuple(ns.services))
            for ns in opt.namespaces
        ),
    )


def _output(p: CollectorParams) -> backend.KafkaOutput | None:
    if p.outputType not in OUTPUTS:
        return None  # cls: the backend says why not
    out = _validate_option(OUTPUTS[p.outputType], p.outputOption, "outputOption")
    assert isinstance(out, KafkaOutput)
    return backend.KafkaOutput(
        host=out.host,
        port=out.port,
        topic=out.topic,
        instance_id=out.instanceId if isinstance(out, CKafkaOutput) else None,
        topic_id=out.topicId if isinstance(out, CKafkaOutput) else None,
    )


def _spec(p: CollectorParams) -> backend.CollectorSpec:
    return backend.CollectorSpec(
        description=p.description, input=_input(p), output_type=p.outputType, output=_output(p)
    )


def _view(rule: backend.Collector) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "clusterId": rule.cluster_id,
        "clusterName": rule.cluster_name,
        "createdAt": fmt_time(rule.created_at),
        "inputType": rule.input_type,
        "outputType": rule.output_type,
        "inputOption": rule.input_option,
        "outputOption": rule.output_option,
    }


@action("CreateLogCollector", CollectorParams, resources=("clusterId",))
def create_collector(ctx: RequestContext, p: CollectorParams) -> dict[str, Any]:
    w = ctx.work()
    cluster = backend.cluster_of(w, p.clusterId, changing=True)
    rule = backend.create_collector(w, cluster, p.name, _spec(p))
    return {"logCollectorList": _view(rule)}


@action("UpdateLogCollector", CollectorParams, resources=("clusterId",))
def update_collector(ctx: RequestContext, p: CollectorParams) -> dict[str, Any]:
    w = ctx.work()
    cluster = backend.cluster_of(w, p.clusterId, changing=True)
    found = backend.find_collector(w, cluster, p.name)
    rule = backend.update_collector(w, cluster, found, _spec(p))
    return {"logCollectorList": _view(rule)}


class ListParams(Paged):
    clusterId: str


@action("ListLogCollector", ListParams, resources=("clusterId",), inline=True)
def list_collectors(ctx: RequestContext, p: ListParams) -> dict[str, Any]:
    w = ctx.work()
    total, page = backend.collectors(w, backend.cluster_of(w, p.clusterId), p.offset, p.limit)
    return {"logCollectorList": [_view(r) for r in page], "totalCount": total}


@action("GetLogCollector", RuleRef, resources=("clusterId",), inline=True)
def get_collector(ctx: RequestContext, p: RuleRef) -> dict[str, Any]:
    w = ctx.work()
    return {
        "logCollectorList": _view(backend.collector(w, backend.cluster_of(w, p.clusterId), p.name))
    }


@action("CheckIfLogCollectorName", RuleRef, resources=("clusterId",), inline=True)
def check_name(ctx: RequestContext, p: RuleRef) -> dict[str, Any]:
    w = ctx.work()
    return {"checkResult": backend.name_taken(w, backend.cluster_of(w, p.clusterId), p.name)}


@action("DeleteLogCollector", RuleRef, resources=("clusterId",))
def delete_collector(ctx: RequestContext, p: RuleRef) -> None:
    w = ctx.work()
    backend.delete_collector(w, backend.cluster_of(w, p.clusterId), p.name)


class StatusParams(Params):
    clusterId: str


@action("GetLogDaemonStatus", StatusParams, resources=("clusterId",), inline=True)
def daemon_status(ctx: RequestContext, p: StatusParams) -> dict[str, Any]:
    w = ctx.work()
    status = backend.daemon_status(w, backend.cluster_of(w, p.clusterId))
    return {
        "enabled": status.enabled,
        "currentNumberScheduled": status.current,
        "desiredNumberScheduled": status.desired,
        "message": status.message,
    }
