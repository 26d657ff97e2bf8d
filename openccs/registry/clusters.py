"""Pull credentials of clusters: a cluster's machines pull as the robot user
`cluster-<clusterId>`, which reads what the cluster's owner may read (the owner's
repositories, everyone's public ones) and never pushes.

The credential is made the first time a node agent asks for it and goes with its cluster:
the row is deleted with the cluster (ON DELETE CASCADE), and it stops working as soon as
the cluster is being deleted or its owner is disabled, since every token request checks.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from openccs.crypto import SecretBox
from openccs.errors import ApiError, not_found
from openccs.log import get_logger, log_event
from openccs.store.models import Account, Cluster
from openccs.timeutil import utcnow

from .models import CcrClusterCredential
from .token import Principal

log = get_logger("openccs.registry.clusters")

USER_PREFIX = "cluster-"
# States in which a cluster's machines may no longer pull.
REVOKED_STATUSES = frozenset({"Deleting"})


def username_for(cluster_id: str) -> str:
    return f"{USER_PREFIX}{cluster_id}"


def cluster_of(username: str) -> str | None:
    """The cluster id a robot user name stands for, or None for any other user name."""
    if not username.startswith(USER_PREFIX):
        return None
    return username[len(USER_PREFIX) :] or None


def _password(s: Session, box: SecretBox, cluster_id: str) -> str:
    """The cluster's password, made on first use. Two node agents asking at once both get
    the one that was stored first (insert-or-nothing, then read)."""
    row = s.get(CcrClusterCredential, cluster_id)
    if row is None:
        values = {
            "cluster_id": cluster_id,
            "password_enc": box.encrypt(secrets.token_urlsafe(32)),
            "created_at": utcnow(),
        }
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        made = s.execute(insert(CcrClusterCredential).values(**values).on_conflict_do_nothing())
        if made.rowcount:  # type: ignore[attr-defined]
            log_event(log, "cluster pull credential created", cluster=cluster_id)
        row = s.get(CcrClusterCredential, cluster_id, populate_existing=True)
        assert row is not None
    return box.decrypt(row.password_enc)


def pull_auth_for_cluster(
    s: Session, box: SecretBox, cluster_id: str, serveraddress: str
) -> dict[str, str]:
    """What dockerd's `X-Registry-Auth` needs for a machine of the cluster to pull from
    `serveraddress` (`registry_endpoint_for` of the machine's gateway)."""
    cluster = s.get(Cluster, cluster_id)
    if cluster is None:
        raise not_found("cluster", cluster_id)
    if cluster.status in REVOKED_STATUSES:
        raise ApiError(
            5100,
            "ClusterDeleting",
            f"cluster {cluster_id} is {cluster.status}: its machines no longer pull",
        )
    return {
        "username": username_for(cluster_id),
        "password": _password(s, box, cluster_id),
        "serveraddress": serveraddress,
    }


def registry_auth_header(auth: dict[str, str]) -> str:
    """The `X-Registry-Auth` header value: the JSON credential in URL-safe base64."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def authenticate(s: Session, box: SecretBox, username: str, password: str) -> Principal | None:
    """The principal of a cluster's robot user, if the password is right and the cluster
    (and its owner) may still pull."""
    cluster_id = cluster_of(username)
    if cluster_id is None:
        return None
    row = s.execute(
        select(CcrClusterCredential.password_enc, Cluster.account_id, Cluster.status)
        .join(Cluster, Cluster.id == CcrClusterCredential.cluster_id)
        .join(Account, Account.id == Cluster.account_id)
        .where(CcrClusterCredential.cluster_id == cluster_id, Account.enabled.is_(True))
    ).first()
    if row is None or row.status in REVOKED_STATUSES:
        return None
    if not hmac.compare_digest(box.decrypt(row.password_enc).encode(), password.encode()):
        return None
    return Principal(uin=username, account_id=row.account_id, pull_only=True)


def revoke(s: Session, cluster_id: str) -> bool:
    """Forget the cluster's credential now (deleting the cluster does it too)."""
    row = s.get(CcrClusterCredential, cluster_id)
    if row is None:
        return False
    s.delete(row)
    log_event(log, "cluster pull credential revoked", cluster=cluster_id)
    return True
