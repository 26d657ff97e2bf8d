"""The workloads backend's rules on a real database without machines: what a service,
a namespace and an instance may and may not become, and the effects a change declares.
The end-to-end tests (test_workloads.py, test_kube_writes.py) prove the same rules through
both front ends with machines."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from openccs.backends import Work
from openccs.backends import workloads as backend
from openccs.backends.workload_params import ServiceParams, spec_of
from openccs.domain import accounts
from openccs.domain import workloads as wl
from openccs.domain.spec import ServiceSpec
from openccs.errors import ApiError
from openccs.server import Services
from openccs.store.models import K8sNamespace, Pod, ReplicaSet, Service
from openccs.traffic.models import Ingress
from tests.conftest import UNIT_CLUSTER as CLUSTER

BUSYBOX = "busybox:1.36"


def _spec(**more: Any) -> ServiceSpec:
    params = {
        "clusterId": CLUSTER,
        "serviceName": "web",
        "replicas": 1,
        "containers": [{"containerName": "a", "image": BUSYBOX}],
        "portMappings": [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}],
        **more,
    }
    return spec_of(ServiceParams.model_validate(params))


def _code(err: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return err.value.code, err.value.code_desc


def test_a_service_gets_its_ip_its_label_and_a_node_port_it_keeps(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        svc = backend.create_service(
            w, CLUSTER, "default", "web", _spec(accessType="NodePort"), 2, labels={"tier": "x"}
        )
        assert svc.cluster_ip == "172.17.0.10"  # the first few are kept for DNS
        assert svc.labels == {wl.APP_LABEL: "web", "tier": "x"}
        port = svc.spec["portMappings"][0]["nodePort"]
        assert 30000 <= port <= 32767
        # The whole service again: the port mapping keeps its node port.
        backend.update_service(w, svc, _spec(accessType="NodePort"), 3, "again")
        assert svc.spec["portMappings"][0]["nodePort"] == port
        assert (svc.replicas, svc.description) == (3, "again")
        # Without access it has no service IP.
        backend.update_service(w, svc, _spec(accessType="None", portMappings=[]), 3, "")
        assert svc.cluster_ip is None
        with pytest.raises(ApiError) as err:
            backend.create_service(w, CLUSTER, "default", "web", _spec(), 1)
        assert _code(err) == (4000, "ServiceExists")


def test_what_a_service_is_refused(services: Services, account: int) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        privileged = _spec(containers=[{"containerName": "a", "image": BUSYBOX,
                                        "privileged": True}])  # fmt: skip
        with pytest.raises(ApiError) as err:
            backend.create_service(w, CLUSTER, "default", "web", privileged, 1)
        assert "containers.0.privileged" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.create_service(w, CLUSTER, "nothere", "web", _spec(), 1)
        assert err.value.code == 5000 and "nothere" in err.value.message
        ns = s.scalars(select(K8sNamespace).where(K8sNamespace.name == "default")).one()
        ns.status = "Terminating"
        with pytest.raises(ApiError) as err:
            backend.create_service(w, CLUSTER, "default", "web", _spec(), 1)
        assert _code(err) == (5100, "NamespaceTerminating")
        # Another account's cluster does not exist for this one.
        other = Work(s, accounts.create_account(s).id, services)
        with pytest.raises(ApiError) as err:
            backend.services(other, CLUSTER, None)
        assert err.value.code == 5000
        assert s.scalars(select(Service)).first() is None


def test_images_change_by_name_and_twice_is_refused(services: Services, account: int) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        svc = backend.create_service(w, CLUSTER, "default", "web", _spec(), 1)
        with pytest.raises(ApiError) as err:
            backend.set_images(w, svc, [("b", "busybox:1.37")])
        assert "containers.0.containerName" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.set_images(w, svc, [("a", "busybox:1.37"), ("a", "busybox:1.38")])
        assert "containers.1.containerName" in err.value.message
        assert svc.spec["containers"][0]["image"] == BUSYBOX
        backend.set_images(w, svc, [("a", "busybox:1.37")])
        assert ServiceSpec.from_v2(svc.spec).containers[0].image == "busybox:1.37"


def test_rollback_returns_to_the_revision_before_and_makes_it_the_newest(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        svc = backend.create_service(w, CLUSTER, "default", "web", _spec(), 1)
        with pytest.raises(ApiError) as err:
            backend.rollback(w, svc)
        assert _code(err) == (5100, "NoRevisionToRollBack")
        # The revisions the deployment controller would have made: 1 (busybox:1.36) ...
        first = wl.template_of(svc.spec, svc.restarted_at)
        s.add(ReplicaSet(service_id=svc.id, revision=1, template=first,
                         template_hash=wl.template_hash(first)))  # fmt: skip
        backend.set_images(w, svc, [("a", "busybox:1.37")])
        # ... and 2 (busybox:1.37), the current one.
        second = wl.template_of(svc.spec, svc.restarted_at)
        s.add(ReplicaSet(service_id=svc.id, revision=2, template=second,
                         template_hash=wl.template_hash(second)))  # fmt: skip
        s.flush()
        backend.rollback(w, svc)
        assert svc.spec["containers"][0]["image"] == BUSYBOX
        current = wl.current_replicaset(s, svc)
        assert current is not None and current.revision == 3
        assert svc.operation == "RollingBack"


def test_deleting_a_namespace_takes_its_services_and_ingresses_and_wakes_traffic(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        backend.create_namespace(w, CLUSTER, "shop", "the shop")
        with pytest.raises(ApiError) as err:
            backend.create_namespace(w, CLUSTER, "shop", "")
        assert _code(err) == (4000, "NamespaceExists")
        svc = backend.create_service(w, CLUSTER, "shop", "web", _spec(), 1)
        s.add(Ingress(account_id=account, cluster_id=CLUSTER, namespace="shop", name="in"))
        s.flush()
        with pytest.raises(ApiError) as err:
            backend.delete_namespaces(w, CLUSTER, ["shop", "default"])
        assert "names.1" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.delete_namespaces(w, CLUSTER, ["shop", "shop"])
        assert "names.1" in err.value.message
        assert not w.effects.wake_traffic
        backend.delete_namespaces(w, CLUSTER, ["shop"])
        assert svc.deleting
        assert s.scalars(select(Ingress)).first() is None
        assert w.effects.wake_traffic
        assert [n.status for n in backend.namespaces(w, CLUSTER) if n.name == "shop"] == [
            "Terminating"
        ]


def test_instances_are_deleted_once_each(services: Services, account: int) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        svc = backend.create_service(w, CLUSTER, "default", "web", _spec(), 1)
        s.add(Pod(account_id=account, cluster_id=CLUSTER, namespace="default", name="web-1",
                  service_id=svc.id, uid="u1", template={}))  # fmt: skip
        s.flush()
        with pytest.raises(ApiError) as err:
            backend.delete_instances(w, CLUSTER, "default", ["web-1", "web-1"])
        assert "instances.1" in err.value.message
        done, failed = backend.delete_instances(w, CLUSTER, "default", ["web-1", "web-2"])
        assert done == ["web-1"] and "does not exist" in failed["web-2"]
        done, failed = backend.delete_instances(w, CLUSTER, "default", ["web-1"])
        assert done == [] and "already being deleted" in failed["web-1"]
        assert not backend.evict(w, CLUSTER, "default", "web-2")
