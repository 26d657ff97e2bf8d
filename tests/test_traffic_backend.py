"""The traffic backend's rules on a real database without machines: what an ingress's rules
must hold against the cluster, its balancer, and the effects a change declares. The
end-to-end tests (test_traffic.py) prove the same through the v2 actions with nginx
answering on real VIPs."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from openccs.backends import Work, workloads
from openccs.backends import traffic as backend
from openccs.backends.traffic import IngressChange, IngressRule, NewIngress
from openccs.backends.workload_params import ServiceParams, spec_of
from openccs.errors import ApiError
from openccs.server import Services
from openccs.traffic.models import Certificate, Ingress, LoadBalancer
from tests.conftest import UNIT_CLUSTER as CLUSTER
from tests.conftest import UNIT_SUBNET

WEB = IngressRule("/", "shop.example.com", "http", "web", 80, 80)


def _service(w: Work, name: str = "web", namespace: str = "default") -> None:
    params = {
        "clusterId": CLUSTER,
        "serviceName": name,
        "replicas": 1,
        "containers": [{"containerName": "a", "image": "busybox:1.36"}],
        "portMappings": [
            {"lbPort": 80, "containerPort": 8080, "protocol": "TCP"},
            {"lbPort": 53, "containerPort": 53, "protocol": "UDP"},
        ],
    }
    workloads.create_service(
        w, CLUSTER, namespace, name, spec_of(ServiceParams.model_validate(params)), 1
    )


def _refused(call: object, code: int, where: str) -> None:
    with pytest.raises(ApiError) as err:
        call()  # type: ignore[operator]
    assert err.value.code == code and where in err.value.message, err.value.message


def _count(w: Work, model: type) -> int:
    return int(w.db.scalar(select(func.count()).select_from(model)) or 0)


def test_an_ingress_gets_a_public_balancer_and_its_rules_as_the_document_says(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _service(w)
        other = IngressRule("~* \\.png$", "*.example.com", "http", "web", 80, 8080)
        ing = backend.create_ingress(w, CLUSTER, NewIngress("default", "front", "the shop",
                                     rules=[WEB, other]))  # fmt: skip
        assert w.effects.wake_traffic
        stored = {"url": "/", "domain": "shop.example.com", "protocol": "http",
                  "serviceName": "web", "servicePort": 80, "LoadBalancePort": 80}  # fmt: skip
        assert ing.rules[0] == stored
        [state] = backend.ingresses(w, CLUSTER, "default")
        assert state.rules == (WEB, other) and state.description == "the shop"
        assert state.balancer is not None and state.balancer.status == "Creating"
        assert state.balancer.network == "public"
        assert ipaddress.ip_address(state.balancer.vip) in ipaddress.ip_network(
            services.settings.lb_pool
        )
        # A second ingress has a VIP of its own; an inner one takes its subnet's.
        inner = NewIngress("default", "inner", rules=[WEB], subnet_id=UNIT_SUBNET)
        backend.create_ingress(w, CLUSTER, inner)
        vips = {
            st.name: st.balancer.vip for st in backend.ingresses(w, CLUSTER, None) if st.balancer
        }
        assert ipaddress.ip_address(vips["inner"]) in ipaddress.ip_network("10.0.1.0/24")
        assert vips["inner"] != vips["front"]
        _refused(lambda: backend.create_ingress(w, CLUSTER, inner), 4000, "already exists")
        _refused(lambda: backend.create_ingress(w, CLUSTER, replace(inner, name="x",
                 subnet_id="subnet-nothere")), 5000, "unSubnetId")  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "cert", "where"),
    [
        ([replace(WEB, protocol="https")], "", "rules.0.protocol"),
        ([WEB], "cert-nothere", "certId"),
        ([replace(WEB, service_name="db")], "", "rules.0.serviceName"),
        ([replace(WEB, service_port=53)], "", "rules.0.servicePort"),  # UDP only
        ([replace(WEB, service_port=8080)], "", "rules.0.servicePort"),  # a container port
        ([WEB, WEB], "", "rules.1"),
        ([WEB, replace(WEB, url="/b", protocol="https")], "cert-unit0001", "rules.1.Load"),
        ([replace(WEB, url="/a b")], "", "rules.0.url"),
        ([replace(WEB, url="~ {")], "", "rules.0.url"),
        ([WEB, replace(WEB, domain="a*.example.com")], "", "rules.1.domain"),
    ],
)
def test_bad_rules_create_nothing(
    services: Services, account: int, rules: list[IngressRule], cert: str, where: str
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _service(w)
        s.add(Certificate(id="cert-unit0001", account_id=account, cert_pem="", key_enc=""))
        s.flush()
        new = NewIngress("default", "front", cert_id=cert, rules=rules)
        _refused(lambda: backend.create_ingress(w, CLUSTER, new), 4000, where)
        assert (_count(w, Ingress), _count(w, LoadBalancer)) == (0, 0)
        assert not w.effects.wake_traffic


def test_changes_keep_the_rules_true_and_deleting_takes_the_balancer(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        _service(w)
        _service(w, "api")
        backend.create_ingress(w, CLUSTER, NewIngress("default", "front", rules=[WEB]))
        # Rules replaced; the description kept when not given.
        api = replace(WEB, url="/api", service_name="api")
        backend.modify_ingress(w, CLUSTER, "default", "front", IngressChange("new", rules=[api]))
        backend.modify_ingress(w, CLUSTER, "default", "front", IngressChange(cert_id=""))
        [state] = backend.ingresses(w, CLUSTER, "default")
        assert (state.description, state.rules) == ("new", (api,))
        # The rules kept are checked again: https without a certificate, a service gone.
        https = IngressChange(rules=[replace(api, protocol="https")])
        _refused(lambda: backend.modify_ingress(w, CLUSTER, "default", "front", https), 4000,
                 "rules.0.protocol")  # fmt: skip
        workloads.delete_service(w, workloads.find_service(w, CLUSTER, "default", "api"))
        _refused(lambda: backend.modify_ingress(w, CLUSTER, "default", "front", IngressChange("x")),
                 4000, "rules.0.serviceName")  # fmt: skip
        assert backend.ingresses(w, CLUSTER, "default")[0].description == "new"
        _refused(lambda: backend.delete_ingress(w, CLUSTER, "default", "back"), 5000, "back")
        _refused(lambda: backend.delete_ingress(w, CLUSTER, "shop", "front"), 5000, "shop")
        backend.delete_ingress(w, CLUSTER, "default", "front")
        assert (_count(w, Ingress), _count(w, LoadBalancer)) == (0, 0)
        assert w.effects.wake_traffic


def test_ingresses_are_the_callers_and_new_ones_need_a_live_namespace(
    services: Services, account: int
) -> None:
    from openccs.domain import accounts

    with services.store.session() as s:
        w = Work(s, account, services)
        _service(w)
        workloads.create_namespace(w, CLUSTER, "shop", "")
        _service(w, namespace="shop")
        backend.create_ingress(w, CLUSTER, NewIngress("shop", "front", rules=[WEB]))
        assert [i.name for i in backend.ingresses(w, CLUSTER, "default")] == []
        assert [i.namespace for i in backend.ingresses(w, CLUSTER, None)] == ["shop"]
        _refused(lambda: backend.ingresses(w, CLUSTER, "nothere"), 5000, "nothere")
        stranger = Work(s, accounts.create_account(s).id, services)
        _refused(lambda: backend.ingresses(stranger, CLUSTER, None), 5000, CLUSTER)
        _refused(lambda: backend.delete_ingress(stranger, CLUSTER, "shop", "front"), 5000, CLUSTER)
        # A namespace being deleted takes its ingresses and accepts no new one.
        workloads.delete_namespaces(w, CLUSTER, ["shop"])
        assert backend.ingresses(w, CLUSTER, None) == []
        _refused(lambda: backend.create_ingress(w, CLUSTER, NewIngress("shop", "again")), 5100,
                 "being deleted")  # fmt: skip
