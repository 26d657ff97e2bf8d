"""Parameter types and checks of the workload inputs, shared by every front end that
decodes into them (the v2 actions, the Kubernetes API): names as Kubernetes accepts them,
paths a container can be given, affinity terms and volumes."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from openccs.errors import invalid_parameter
from openccs.schema import Params

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Pod names: the service name, a template hash and a suffix (a DNS subdomain in Kubernetes).
POD_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# Kubernetes label keys: an optional DNS-subdomain prefix and a name.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# What a client may put in an NFS volume: `server:/export/path`.
NFS_PATH = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?:/[^\s,:]*$"

# Docker image references: [registry[:port]/]path[:tag][@sha256:digest], path in lower case.
_DOMAIN_PART = r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# As docker reads it, the first part is a registry only with a '.', a port or as localhost.
_REGISTRY = (
    rf"(?:localhost(?::[0-9]+)?|{_DOMAIN_PART}(?:\.{_DOMAIN_PART})+(?::[0-9]+)?"
    rf"|{_DOMAIN_PART}:[0-9]+)"
)
IMAGE_REF = (
    rf"^(?:{_REGISTRY}/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)

ClusterId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=SERVICE_NAME)]
ContainerName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
PodName = Annotated[str, Field(min_length=1, max_length=253, pattern=POD_NAME)]
Description = Annotated[str, Field(max_length=1024)]
Image = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_REF)]


def _command(value: str) -> str:
    # The command becomes the container's entrypoint, split as a shell would split it.
    try:
        shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot be split into words: {exc}") from None
    return value


Command = Annotated[str, Field(max_length=4096), AfterValidator(_command)]


def _path(value: str) -> str:
    # Paths end up in a docker bind (`src:dst:mode`) and under the machine's own root
    # directory: a ':' would split the bind, a '..' would climb out of the machine.
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (start with /)")
    if ":" in value or "," in value or "\x00" in value:
        raise ValueError("must not contain ':' or ','")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..'")
    return value


def _host_path(value: str) -> str:
    # Empty asks for a directory of the pod's own (the document's temporary volume).
    return _path(value) if value else value


def _mount_path(value: str) -> str:
    _path(value)
    if value.strip("/") == "":
        raise ValueError("cannot be / (the container's root)")
    return value


HostPath = Annotated[str, Field(max_length=4096), AfterValidator(_host_path)]
MountPath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_mount_path)]


def _label_pairs(value: Any) -> Any:
    # Labels come as `labels.key=value` (a map) or, as ModifyClusterNodeLabel sends them,
    # `labels.0.key=k&labels.0.value=v` (a list of pairs).
    if isinstance(value, list) and all(isinstance(x, dict) and "key" in x for x in value):
        return {str(x["key"]): x.get("value", "") for x in value}
    if isinstance(value, list):
        return {str(i): x for i, x in enumerate(value)}
    return value


LabelMap = Annotated[dict[str, str], BeforeValidator(_label_pairs)]


def check_labels(labels: dict[str, str], name: str, reserved: str) -> None:
    """Kubernetes label keys and values; the system's own label cannot be set."""
    for key, value in labels.items():
        if len(key) > 253 or not re.match(LABEL_KEY, key):
            raise invalid_parameter(f"{name}.{key}", "not a valid label key")
        if key == reserved:
            raise invalid_parameter(f"{name}.{key}", f"{reserved} is the system's label")
        if len(value) > 63 or not re.match(LABEL_VALUE, value):
            raise invalid_parameter(f"{name}.{key}", f"not a valid label value (got {value!r})")


def check_affinity(terms: Sequence[Any], name: str) -> None:
    """Each term's key is a label key and its values fit its operator, as in Kubernetes."""
    for i, term in enumerate(terms):
        where = f"{name}.{i}"
        if not re.match(LABEL_KEY, term.key):
            raise invalid_parameter(f"{where}.key", f"not a valid label key (got {term.key!r})")
        values = list(term.values)
        if term.operator in ("In", "NotIn") and not values:
            raise invalid_parameter(f"{where}.values", f"{term.operator} needs at least one value")
        if term.operator in ("Exists", "DoesNotExist") and values:
            raise invalid_parameter(f"{where}.values", f"{term.operator} takes no values")
        if term.operator in ("Gt", "Lt"):
            if len(values) != 1 or not re.fullmatch(r"-?[0-9]{1,18}", values[0]):
                raise invalid_parameter(f"{where}.values", f"{term.operator} needs one integer")
            continue
        for j, value in enumerate(values):
            if len(value) > 63 or not re.match(LABEL_VALUE, value):
                raise invalid_parameter(f"{where}.values.{j}", "not a valid label value")


def check_volumes(volumes: Sequence[Any]) -> None:
    """Volume names are unique and each volume has what its type needs; the types this
    deployment cannot provide are refused with what to use instead."""
    if len({v.name for v in volumes}) != len(volumes):
        raise invalid_parameter("volumes", "two volumes have the same name")
    for i, v in enumerate(volumes):
        where = f"volumes.{i}"
        if v.volumeType == "cbsDisk" and not v.cbsDiskId:
            raise invalid_parameter(f"{where}.cbsDiskId", "required for a cbsDisk volume")
        if v.volumeType == "configMap" and not v.configId:
            raise invalid_parameter(f"{where}.configId", "required for a configMap volume")
        if v.volumeType == "configMap" and not v.configVersion:
            raise invalid_parameter(f"{where}.configVersion", "required for a configMap volume")
        if v.volumeType == "nfsDisk":
            if not v.nfsPath:
                raise invalid_parameter(f"{where}.nfsPath", "required for an nfsDisk volume")
            if not re.match(NFS_PATH, v.nfsPath):
                raise invalid_parameter(
                    f"{where}.nfsPath", f"use server:/export/path (got {v.nfsPath!r})"
                )
            raise invalid_parameter(
                f"{where}.volumeType",
                "nfsDisk volumes are not supported by this openccs: its machines have no NFS"
                " client (the host kernel has no NFS file system and no way to load one);"
                " use hostPath",
            )
        if v.volumeType in ("cbsDisk", "configMap"):
            raise invalid_parameter(
                f"{where}.volumeType",
                f"{v.volumeType} needs a disk or configuration service that this deployment"
                " does not have; use hostPath",
            )


def check_mounts(mounts: Sequence[Any], volumes: set[str], where: str) -> None:
    """A container mounts known volumes, each at its own path."""
    paths: set[str] = set()
    for j, m in enumerate(mounts):
        if m.volumeName not in volumes:
            raise invalid_parameter(
                f"{where}.volumeMounts.{j}.volumeName",
                f"no volume named {m.volumeName!r} in volumes",
            )
        path = m.mountPath.rstrip("/")
        if path in paths:
            raise invalid_parameter(
                f"{where}.volumeMounts.{j}.mountPath", f"{m.mountPath} is mounted twice"
            )
        paths.add(path)


class NodeLabel(Params):
    """A label of a node (ModifyClusterNodeLabel's labels.n, a Node's metadata.labels)."""

    key: str = Field(min_length=1, max_length=253, pattern=LABEL_KEY)
    value: str = Field(default="", max_length=63, pattern=LABEL_VALUE)
