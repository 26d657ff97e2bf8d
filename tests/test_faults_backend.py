"""The faults backend's rules on a real database without machines: what a fault request
may target among the caller's own resources, and whose faults it sees. test_faults.py
injects them into machines."""

from __future__ import annotations

import datetime

import pytest

from openccs.backends import Work
from openccs.backends import faults as backend
from openccs.errors import ApiError, Kind
from openccs.faults.models import Fault
from openccs.faults.records import FaultRequest
from openccs.server import Services
from openccs.store.models import Instance
from openccs.timeutil import utcnow
from tests.conftest import UNIT_CLUSTER as CLUSTER
from tests.conftest import UNIT_SUBNET, unit_account


def _machine(w: Work, state: str) -> str:
    w.db.add(Instance(id="ins-flt00001", account_id=w.account_id, vpc_id="vpc-unit0001",
                      subnet_id=UNIT_SUBNET, zone="ap-guangzhou-1", lan_ip="10.0.1.5",
                      cluster_id=CLUSTER, instance_type="S1.SMALL1", cpu=1, mem=1,
                      state=state))  # fmt: skip
    w.db.flush()
    return "ins-flt00001"


def _refused(w: Work, req: FaultRequest) -> ApiError:
    with pytest.raises(ApiError) as err:
        backend.target(w, req)
    return err.value


def test_what_a_fault_may_target(services: Services, account: int) -> None:
    stranger = unit_account(services, 2)
    with services.store.session() as s:
        w = Work(s, account, services)
        ins = _machine(w, "Stopped")
        err = _refused(w, FaultRequest("pod-kill", 0))
        assert (err.code, err.kind) == (4000, Kind.INVALID)
        assert "clusterId, podName" in err.message
        err = _refused(w, FaultRequest("pod-kill", 0, cluster_id=CLUSTER, pod="web-1"))
        assert (err.code, err.kind) == (5000, Kind.NOT_FOUND)
        err = _refused(w, FaultRequest("machine-stop", 60))
        assert "instanceId" in err.message
        err = _refused(w, FaultRequest("machine-stop", 60, instance_id=ins))
        assert "instanceId" in err.message and "Stopped" in err.message
        # A cluster fault needs a running machine in the cluster.
        err = _refused(w, FaultRequest("registry-stall", 60, cluster_id=CLUSTER))
        assert "no running machine" in err.message
        s.get(Instance, ins).state = "Running"  # type: ignore[union-attr]
        spec = backend.target(w, FaultRequest("net-cut", 60, instance_id=ins, direction="in"))
        assert (spec.instance_id, spec.cluster_id, spec.params) == (
            ins,
            CLUSTER,
            {"direction": "in"},
        )
        # A probe loop only knocks at one of the account's load balancers.
        err = _refused(
            w, FaultRequest("net-cut", 60, instance_id=ins, probe_url="http://10.9.9.9/")
        )
        assert "probeUrl" in err.message and "load balancers" in err.message
        # Another account's machine does not exist for it.
        err = _refused(
            Work(s, stranger, services), FaultRequest("machine-stop", 60, instance_id=ins)
        )
        assert (err.code, err.kind) == (5000, Kind.NOT_FOUND)


def test_an_account_sees_its_own_faults_newest_first(services: Services, account: int) -> None:
    other = unit_account(services, 2)
    with services.store.session() as s:
        now = utcnow()
        for i, (acct, state) in enumerate(
            ((account, "ended"), (account, "active"), (other, "active"))
        ):
            s.add(Fault(id=f"flt-{i}", account_id=acct, kind="net-cut", cluster_id=CLUSTER,
                        duration=60, state=state, started_at=now + datetime.timedelta(seconds=i),
                        ends_at=now))  # fmt: skip
        s.flush()
        w = Work(s, account, services)
        assert [f.id for f in backend.faults(w, None, None, None)] == ["flt-1", "flt-0"]
        assert [f.id for f in backend.faults(w, None, None, "ended")] == ["flt-0"]
        assert backend.faults(w, "flt-2", None, None) == []
        assert backend.fault(w, "flt-1").state == "active"
        with pytest.raises(ApiError) as err:
            backend.fault(w, "flt-2")
        assert (err.value.code, err.value.kind) == (5000, Kind.NOT_FOUND)
