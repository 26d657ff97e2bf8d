"""Rows for the tests of backend rules on a real (SQLite) store without machines: an account
with a Running cluster and its default namespaces."""

from __future__ import annotations

from openccs.domain import accounts
from openccs.domain import workloads as wl
from openccs.server import Services
from openccs.store.models import Cluster, Vpc


def account_with_cluster(services: Services, cluster_id: str) -> int:
    """A new account owning a Running cluster `cluster_id` (in a VPC of its own) with the
    default namespaces; the account's id."""
    with services.store.session() as s:
        acct = accounts.create_account(s)
        vpc = f"vpc-{cluster_id[4:]}"
        s.add(Vpc(id=vpc, num_id=acct.id, account_id=acct.id, cidr="10.0.0.0/16"))
        s.flush()
        cluster = Cluster(
            id=cluster_id,
            account_id=acct.id,
            name="unit",
            vpc_id=vpc,
            cidr="172.16.0.0/16",
            service_cidr="172.17.0.0/24",
            status="Running",
        )
        s.add(cluster)
        s.flush()
        wl.ensure_default_namespaces(s, cluster)
        return acct.id
