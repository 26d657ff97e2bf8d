"""A cluster's Kubernetes API endpoint as the cluster actions and the Kubernetes API see it:
its row (the CA and the `admin` secret, made on first need), the ports it listens on, and
the addresses clients reach it at. The listeners themselves are `kube/component.py`'s."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openccs.config import Settings
from openccs.crypto import SecretBox
from openccs.ids import random_token
from openccs.store.models import KubeEndpoint
from openccs.tls import new_ca

USER = "admin"  # the cluster's one user: bearer token and basic-auth password


def internal_port(s: Session, cluster_id: str) -> int | None:
    """The port the cluster's API listens on inside the VPC, once one was picked."""
    row = s.get(KubeEndpoint, cluster_id)
    return row.internal_port if row is not None else None


def ensure_endpoint(s: Session, box: SecretBox, cluster_id: str) -> KubeEndpoint:
    """The cluster's endpoint row, made (CA, secret) on first need."""
    row = s.get(KubeEndpoint, cluster_id)
    if row is not None:
        return row
    cert, key = new_ca(f"{cluster_id} cluster CA")
    row = KubeEndpoint(
        cluster_id=cluster_id,
        ca_cert=cert,
        ca_key_enc=box.encrypt(key),
        password_enc=box.encrypt(random_token(32)),
        external_open=False,
        external_host="",
    )
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        # Made at the same moment by another request: theirs is the one.
        found = s.get(KubeEndpoint, cluster_id)
        assert found is not None
        return found
    return row


def external_url(s: Session, settings: Settings, cluster_id: str) -> str | None:
    """The external address OperateClusterVip opened, or None while it is closed."""
    row = s.get(KubeEndpoint, cluster_id)
    if row is None or not row.external_open or not row.external_port:
        return None
    return url(row.external_host or settings.kube_public_address, row.external_port)


def url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
