"""Tables of the control plane. Every resource row names the account that owns it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openccs.timeutil import utcnow


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    uin: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SubUser(Base):
    __tablename__ = "subusers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    uin: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    # Canonical action names, or "*"; resource ids or fnmatch patterns, or "*".
    allowed_actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_resources: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    secret_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subuser_id: Mapped[int | None] = mapped_column(
        ForeignKey("subusers.id", ondelete="CASCADE"), nullable=True
    )
    # Encrypted with the data directory's key; never stored or logged in clear.
    secret_key_enc: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Quota(Base):
    __tablename__ = "quotas"
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Nonce(Base):
    __tablename__ = "nonces"
    secret_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)


class Task(Base):
    __tablename__ = "tasks"
    # The integer requestId the API hands out.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Step outputs and progress notes, written by the steps themselves.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    step: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_tasks_status", "status"),)


# The local cloud: VPCs, subnets, machines (CVMs) and clusters.


class Vpc(Base):
    __tablename__ = "vpcs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # vpc-xxxxxxxx (unVpcId)
    num_id: Mapped[int] = mapped_column(Integer, unique=True)  # the legacy numeric vpcId
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    cidr: Mapped[str] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Subnet(Base):
    __tablename__ = "subnets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # subnet-xxxxxxxx
    num_id: Mapped[int] = mapped_column(Integer, unique=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    cidr: Mapped[str] = mapped_column(String(32))
    zone: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # cls-xxxxxxxx
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.id"))
    cidr: Mapped[str] = mapped_column(String(32))
    service_cidr: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="Creating")
    os_name: Mapped[str] = mapped_column(String(64), default="")
    k8s_version: Mapped[str] = mapped_column(String(32), default="")
    project_id: Mapped[int] = mapped_column(Integer, default=0)
    master_subnet_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Node settings kept from creation, used for nodes added later (instance type, disks...).
    node_defaults: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Instance(Base):
    """A machine (CVM). In a cluster it is a node; with no cluster it is an existing CVM."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # ins-xxxxxxxx
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.id"))
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"))
    zone: Mapped[str] = mapped_column(String(32))
    lan_ip: Mapped[str] = mapped_column(String(45), unique=True)
    cluster_id: Mapped[str | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(128), default="")
    instance_type: Mapped[str] = mapped_column(String(32))
    cpu: Mapped[int] = mapped_column(Integer)  # cores
    mem: Mapped[int] = mapped_column(Integer)  # GiB
    os_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(Text, default="")
    key_id: Mapped[str] = mapped_column(String(64), default="")
    user_script: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Lifecycle: Creating, Running, Failed, Stopped, Deleting.
    state: Mapped[str] = mapped_column(String(16), default="Creating")
    pod_cidr: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    unschedulable: Mapped[bool] = mapped_column(Boolean, default=False)
    drain_status: Mapped[str] = mapped_column(String(32), default="")
    is_normal: Mapped[bool] = mapped_column(Boolean, default=False)
    abnormal_reason: Mapped[str] = mapped_column(Text, default="")
    kernel_version: Mapped[str] = mapped_column(String(64), default="")
    autoscaling_group_id: Mapped[str] = mapped_column(String(32), default="")
    project_id: Mapped[int] = mapped_column(Integer, default=0)
    # The task that created it (rolled back with that task on failure).
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class HubInfo(Base):
    """A third-party registry's credentials for a cluster (AddHubInfo)."""

    __tablename__ = "hub_infos"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # hub-xxxxxxxx
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    password_enc: Mapped[str] = mapped_column(Text)
    namespaces: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# Workloads: namespaces, services (Deployments), their revisions (ReplicaSets), pods, events.


class K8sNamespace(Base):
    __tablename__ = "k8s_namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="Active")  # Active, Terminating
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cluster_id", "name"),)


class Service(Base):
    """A service of the API: a Kubernetes Deployment (and its Service object)."""

    __tablename__ = "services"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    # Everything that makes the pod template and the access: containers, volumes,
    # portMappings, accessType, subnetId, nodeAffinity, podAffinity, strategy, minReadySeconds.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # "" while nothing special happens; "RollingBack" while returning to a revision.
    operation: Mapped[str] = mapped_column(String(16), default="")
    # Bumped by RedeployClusterService: part of the template, so every pod is replaced.
    restarted_at: Mapped[str] = mapped_column(String(32), default="")
    cluster_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cluster_id", "namespace", "name"),)


class ReplicaSet(Base):
    """One revision of a service's pod template."""

    __tablename__ = "replicasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    template_hash: Mapped[str] = mapped_column(String(16))
    template: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    replicas: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("service_id", "revision"),)


class Pod(Base):
    __tablename__ = "pods"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), nullable=True, index=True
    )
    replicaset_id: Mapped[int | None] = mapped_column(
        ForeignKey("replicasets.id", ondelete="SET NULL"), nullable=True
    )
    template: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    node_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # What the node agent last saw: ip, ready, reason, containers [{name, containerId,
    # status, reason, restartCount, ready, image, startedAt}].
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ready_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cluster_id", "namespace", "name"),)


class Event(Base):
    """Kubernetes-style events, de-duplicated by (object, reason, message)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63), default="")
    obj_type: Mapped[str] = mapped_column(String(32))
    obj_name: Mapped[str] = mapped_column(String(253))
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(16), default="Normal")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_events_lookup", "cluster_id", "namespace", "service"),)


class KubeEndpoint(Base):
    """The Kubernetes endpoint of a cluster: its CA, the admin secret, and its listeners'
    ports (made on first need, `domain/endpoints.py`)."""

    __tablename__ = "kube_endpoints"
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    # The cluster CA (certificate in clear, key encrypted like SecretKeys).
    ca_cert: Mapped[str] = mapped_column(Text)
    ca_key_enc: Mapped[str] = mapped_column(Text)
    # The `admin` secret: bearer token and basic-auth password.
    password_enc: Mapped[str] = mapped_column(Text)
    # Port on the VPC gateway addresses (always open while the cluster exists).
    internal_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # OperateClusterVip: whether the external address is wanted, and its port.
    external_open: Mapped[bool] = mapped_column(Boolean, default=False)
    external_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    external_host: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
