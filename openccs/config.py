"""Server settings: where state lives, what it listens on, and the limits it enforces."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """The user's data directory: /var/lib/openccs for root, XDG data home otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/openccs")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "openccs"


@dataclass(frozen=True)
class Region:
    name: str
    alias: str
    region_id: int


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: int


@dataclass(frozen=True)
class InstanceType:
    name: str
    cpu: int  # cores
    mem: int  # GiB


def _family(prefix: str, sizes: list[tuple[str, int, int]]) -> list[InstanceType]:
    return [InstanceType(f"{prefix}.{size}", cpu, mem) for size, cpu, mem in sizes]


_SIZES = [
    ("SMALL1", 1, 1),
    ("SMALL2", 1, 2),
    ("SMALL4", 1, 4),
    ("MEDIUM2", 2, 2),
    ("MEDIUM4", 2, 4),
    ("MEDIUM8", 2, 8),
    ("LARGE8", 4, 8),
    ("LARGE16", 4, 16),
]

# The catalogue of machine types: cpu/mem of a request must match one of them.
INSTANCE_TYPES: tuple[InstanceType, ...] = tuple(
    _family("S1", _SIZES) + _family("S2", _SIZES) + _family("S3", _SIZES)
)


# Quotas with the API document's defaults; an operator can change them per account.
DEFAULT_QUOTAS: dict[str, int] = {
    "clusters": 5,
    "nodesPerCluster": 20,
    "goodsNum": 100,
    "ccrNamespaces": 10,
    "ccrRepositories": 100,
    "ccrTagsPerRepository": 100,
    "ccrTriggers": 10,
}


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    http: str | None = "127.0.0.1:7080"
    https: str | None = "127.0.0.1:7443"
    database_url: str | None = None
    timezone: str = "Asia/Shanghai"
    # The document: "Timestamp must not differ from the server's clock by more than 2 hours".
    timestamp_window: int = 7200
    # Nonces remembered per SecretId before the oldest are folded into a timestamp floor.
    nonce_memory_per_key: int = 500_000
    max_get_bytes: int = 32 * 1024
    max_post_bytes: int = 1024 * 1024
    # Seconds a client has to send a whole request (headers and body), and the connections
    # one client address may hold on a listener (openccs.httpguard).
    request_read_timeout: float = 10.0
    max_connections_per_client: int = 128
    enable_test_actions: bool = False
    # Processes serving the API listeners (`serve --workers`): the main process and N-1
    # API workers (openccs.api.workers).
    api_workers: int = 1
    task_workers: int = 8
    regions: tuple[Region, ...] = (Region("ap-guangzhou", "gz", 1),)
    zones: tuple[Zone, ...] = (Zone("ap-guangzhou-3", 100003), Zone("ap-guangzhou-4", 100004))
    # The default VPC made at first start (its subnets are the first /24s per zone);
    # None picks 10.0.0.0/16, or the first 10.x.0.0/16 this host does not route yet.
    default_vpc_cidr: str | None = None
    # Seconds between machine health checks.
    health_interval: float = 5.0
    # Seconds a machine may be not ready before its pods are replaced on other machines.
    node_grace: float = 60.0
    # A machine's disk: "dir", a directory of the host (its disk is the host's); "loop", an
    # ext4 file system of the machine's rootSize on a sparse image (it can fill up).
    machine_disks: str = "dir"
    # Seconds between a cluster's engine passes when nothing wakes it (the resync that
    # repairs what an event lost; changes, dockerd events and probes wake it at once).
    engine_resync: float = 1.0
    # Public VIPs of load balancers and ingresses (accessType LoadBalancer, public ingress).
    lb_pool: str = "198.18.0.0/24"
    # Node ports allocated when a portMapping gives none (Kubernetes' default range).
    node_port_range: tuple[int, int] = (30000, 32767)
    # Seconds in one of the autoscaler's minutes (the document's unit; tests shorten it),
    # and seconds between two autoscaler passes (cluster-autoscaler's scan interval).
    asg_minute_seconds: float = 60.0
    asg_scan_interval: float = 10.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_public_plain_http: bool = False
    # A privileged container has root on this host (the machines share its kernel and
    # devices): refused (4000) unless the operator allows them for every tenant.
    allow_privileged: bool = False
    # Monitor: seconds between sampling passes (0 turns the sampler off), seconds each
    # kind of data is kept ("raw" counters, then "60", "300", "3600", "86400" rollups;
    # unset kinds keep openccs.monitor.sampler.DEFAULT_RETENTION), points per request.
    sample_interval: float = 10.0
    monitor_retention: dict[str, int] = field(default_factory=dict)
    monitor_max_points: int = 1440
    # Where OperateClusterVip opens a cluster's external Kubernetes API address.
    kube_public_address: str = "127.0.0.1"
    # Seconds a console sign-in lasts.
    console_session_ttl: float = 8 * 3600.0

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'openccs.db'}"

    @property
    def auth_epoch(self) -> Path:
        """Replaced whenever accounts, keys or sub-accounts change (see CallerCache)."""
        return self.data_dir / "auth-epoch"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    def region_names(self) -> set[str]:
        names: set[str] = set()
        for r in self.regions:
            names.update({r.name, r.alias})
        return names


def parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
