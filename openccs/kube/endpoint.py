"""Where a cluster's Kubernetes API is reached (read by DescribeCluster)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openccs.config import Settings
from openccs.kube.models import KubeEndpoint


def external_url(s: Session, settings: Settings, cluster_id: str) -> str | None:
    """The external address OperateClusterVip opened, or None while it is closed."""
    row = s.get(KubeEndpoint, cluster_id)
    if row is None or not row.external_open or not row.external_port:
        return None
    return url(row.external_host or settings.kube_public_address, row.external_port)


def url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
