"""Just enough of Kubernetes' protobuf encoding to read what typed clients (kubectl create
namespace, deployment, service; drain's evictions) send: metadata, and the Deployment and
Service fields of the service model, by the field numbers of k8s.io/api's generated.proto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAGIC = b"k8s\x00"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield num, wire, value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield num, wire, buf[i : i + size]
            i += size
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _map_entry(buf: bytes) -> tuple[str, Any]:
    k: str = ""
    v: Any = ""
    for num, _, value in _fields(buf):
        if num == 1:
            k = value.decode()
        elif num == 2:
            v = value
    return k, v


# A message's fields by number: (JSON name, type, message of the values or None). Types: str,
# int, bool, ptr (an optional number, kept when zero), msg, rmsg (repeated), rstr, map (string
# to string), qmap (string to Quantity), ios (IntOrString), set (any value: only that it was
# given, for the fields the service model does not have, so they answer 422 by name).
Schema = dict[int, tuple[str, str, "Schema | None"]]

META: Schema = {1: ("name", "str", None), 2: ("generateName", "str", None),
                3: ("namespace", "str", None), 5: ("uid", "str", None),
                6: ("resourceVersion", "str", None), 11: ("labels", "map", None),
                12: ("annotations", "map", None), 13: ("ownerReferences", "set", None),
                14: ("finalizers", "rstr", None)}  # fmt: skip
_SKIPPED_META = {4, 7, 8, 9, 10, 15, 17}  # selfLink, generation, timestamps, managedFields...
PORT: Schema = {1: ("name", "str", None), 2: ("hostPort", "int", None),
                3: ("containerPort", "int", None), 4: ("protocol", "str", None),
                5: ("hostIP", "str", None)}  # fmt: skip
ENV: Schema = {1: ("name", "str", None), 2: ("value", "str", None), 3: ("valueFrom", "set", None)}
RESOURCES: Schema = {1: ("limits", "qmap", None), 2: ("requests", "qmap", None),
                     3: ("claims", "set", None)}  # fmt: skip
MOUNT: Schema = {1: ("name", "str", None), 2: ("readOnly", "bool", None),
                 3: ("mountPath", "str", None), 4: ("subPath", "str", None),
                 5: ("mountPropagation", "set", None), 6: ("subPathExpr", "str", None)}  # fmt: skip
CONTAINER: Schema = {
    1: ("name", "str", None), 2: ("image", "str", None), 3: ("command", "rstr", None),
    4: ("args", "rstr", None), 5: ("workingDir", "str", None), 6: ("ports", "rmsg", PORT),
    7: ("env", "rmsg", ENV), 8: ("resources", "msg", RESOURCES),
    9: ("volumeMounts", "rmsg", MOUNT), 10: ("livenessProbe", "set", None),
    11: ("readinessProbe", "set", None), 12: ("lifecycle", "set", None),
    13: ("terminationMessagePath", "str", None), 14: ("imagePullPolicy", "str", None),
    15: ("securityContext", "set", None), 16: ("stdin", "bool", None),
    17: ("stdinOnce", "bool", None), 18: ("tty", "bool", None), 19: ("envFrom", "set", None),
    20: ("terminationMessagePolicy", "str", None), 21: ("volumeDevices", "set", None),
    22: ("startupProbe", "set", None), 23: ("resizePolicy", "set", None),
    24: ("restartPolicy", "str", None),
}  # fmt: skip
POD_SPEC: Schema = {
    1: ("volumes", "set", None), 2: ("containers", "rmsg", CONTAINER),
    3: ("restartPolicy", "str", None), 4: ("terminationGracePeriodSeconds", "ptr", None),
    5: ("activeDeadlineSeconds", "ptr", None), 6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map", None), 8: ("serviceAccountName", "str", None),
    9: ("serviceAccount", "str", None), 10: ("nodeName", "str", None),
    11: ("hostNetwork", "bool", None), 12: ("hostPID", "bool", None),
    13: ("hostIPC", "bool", None), 14: ("securityContext", "set", None),
    15: ("imagePullSecrets", "set", None), 16: ("hostname", "str", None),
    17: ("subdomain", "str", None), 18: ("affinity", "set", None),
    19: ("schedulerName", "str", None), 20: ("initContainers", "set", None),
    21: ("automountServiceAccountToken", "set", None), 22: ("tolerations", "set", None),
    23: ("hostAliases", "set", None), 24: ("priorityClassName", "str", None),
    25: ("priority", "set", None), 26: ("dnsConfig", "set", None),
    27: ("shareProcessNamespace", "set", None), 28: ("readinessGates", "set", None),
    29: ("runtimeClassName", "set", None), 30: ("enableServiceLinks", "set", None),
    31: ("preemptionPolicy", "set", None), 32: ("overhead", "set", None),
    33: ("topologySpreadConstraints", "set", None), 34: ("setHostnameAsFQDN", "set", None),
    35: ("os", "set", None), 36: ("hostUsers", "set", None),
    37: ("schedulingGates", "set", None), 38: ("resourceClaims", "set", None),
}  # fmt: skip
TEMPLATE: Schema = {1: ("metadata", "msg", META), 2: ("spec", "msg", POD_SPEC)}
SELECTOR: Schema = {1: ("matchLabels", "map", None), 2: ("matchExpressions", "set", None)}
ROLLING: Schema = {1: ("maxUnavailable", "ios", None), 2: ("maxSurge", "ios", None)}
STRATEGY: Schema = {1: ("type", "str", None), 2: ("rollingUpdate", "msg", ROLLING)}
DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "ptr", None), 2: ("selector", "msg", SELECTOR),
    3: ("template", "msg", TEMPLATE), 4: ("strategy", "msg", STRATEGY),
    5: ("minReadySeconds", "int", None), 6: ("revisionHistoryLimit", "ptr", None),
    7: ("paused", "bool", None), 9: ("progressDeadlineSeconds", "ptr", None),
}  # fmt: skip
SERVICE_PORT: Schema = {1: ("name", "str", None), 2: ("protocol", "str", None),
                        3: ("port", "int", None), 4: ("targetPort", "ios", None),
                        5: ("nodePort", "int", None), 6: ("appProtocol", "set", None)}  # fmt: skip
SERVICE_SPEC: Schema = {
    1: ("ports", "rmsg", SERVICE_PORT), 2: ("selector", "map", None),
    3: ("clusterIP", "str", None), 4: ("type", "str", None), 5: ("externalIPs", "set", None),
    7: ("sessionAffinity", "str", None), 8: ("loadBalancerIP", "set", None),
    9: ("loadBalancerSourceRanges", "set", None), 10: ("externalName", "str", None),
    11: ("externalTrafficPolicy", "str", None), 12: ("healthCheckNodePort", "int", None),
    13: ("publishNotReadyAddresses", "bool", None), 14: ("sessionAffinityConfig", "set", None),
}  # fmt: skip
OBJECTS: dict[str, Schema] = {
    "Namespace": {1: ("metadata", "msg", META)},
    "Eviction": {1: ("metadata", "msg", META)},
    "Deployment": {1: ("metadata", "msg", META), 2: ("spec", "msg", DEPLOYMENT_SPEC)},
    "Service": {1: ("metadata", "msg", META), 2: ("spec", "msg", SERVICE_SPEC)},
}
# What is not read: an object's status, and a Namespace's or an Eviction's other parts.
_IGNORED = {"Namespace": {2, 3}, "Eviction": {2}, "Deployment": {3}, "Service": {3}}


def _int(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int_or_string(buf: bytes) -> int | str:
    typ, num, text = 0, 0, ""
    for n, _, value in _fields(buf):
        if n == 1:
            typ = value
        elif n == 2:
            num = _int(value)
        elif n == 3:
            text = value.decode()
    return text if typ == 1 else num


def _quantity(buf: bytes) -> str:
    return next((v.decode() for n, _, v in _fields(buf) if n == 1), "")


def _message(buf: bytes, schema: Schema, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    skip = _SKIPPED_META if schema is META else set()
    for num, wire, value in _fields(buf):
        if num not in schema:
            if num in skip or (wire == 0 and value == 0) or value == b"":
                continue
            raise ValueError(f"field {num} of {where} is not read from protobuf")
        name, typ, sub = schema[num]
        if typ == "str":
            if value:
                out[name] = value.decode()
        elif typ == "int":
            if value:
                out[name] = _int(value)
        elif typ == "ptr":
            out[name] = _int(value)
        elif typ == "bool":
            if value:
                out[name] = True
        elif typ == "msg":
            assert sub is not None
            inner = _message(value, sub, f"{where}.{name}")
            if inner:
                out[name] = inner
        elif typ == "rmsg":
            assert sub is not None
            out.setdefault(name, []).append(_message(value, sub, f"{where}.{name}"))
        elif typ == "rstr":
            out.setdefault(name, []).append(value.decode())
        elif typ in ("map", "qmap"):
            k, v = _map_entry(value)
            out.setdefault(name, {})[k] = v.decode() if typ == "map" else _quantity(v)
        elif typ == "ios":
            out[name] = _int_or_string(value)
        elif value not in (0, b""):  # set: given, with a value the model will refuse by name
            out[name] = {"given": "in protobuf"}
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """An enveloped object (`k8s\\0` + runtime.Unknown) as JSON: the metadata of any object;
    the spec of a Deployment or a Service as far as the service model reads it, and any other
    field that was given named, so the service model refuses it by name."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message")
    api_version = kind = ""
    raw = b""
    for num, _, value in _fields(body[len(MAGIC) :]):
        if num == 1:
            for n2, _, v2 in _fields(value):
                if n2 == 1:
                    api_version = v2.decode()
                elif n2 == 2:
                    kind = v2.decode()
        elif num == 2:
            raw = value
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    schema = OBJECTS.get(kind, {1: ("metadata", "msg", META)})
    ignored = _IGNORED.get(kind, set(range(2, 64)))
    for num, _, value in _fields(raw):
        if num in ignored or num not in schema:
            continue
        name, _, sub = schema[num]
        assert sub is not None
        out[name] = _message(value, sub, f"{kind}.{name}")
    return out


# The resources whose protobuf bodies are read.
OBJECTS_OF = {"namespaces", "deployments", "services"}
