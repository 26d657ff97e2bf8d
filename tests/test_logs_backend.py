"""The logs backend's rules on a real database without machines: what a collection rule may
read and where it may ship, how a rule changes, and the effects a change declares. The
end-to-end tests (test_logs.py) prove the same through the v2 wire with machines and a
Kafka broker."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openccs.backends import Work
from openccs.backends import logs as backend
from openccs.errors import ApiError, Kind
from openccs.logs.models import LogCollector, LogOffset
from openccs.server import Services
from openccs.store.models import Cluster
from tests.conftest import UNIT_CLUSTER as CLUSTER
from tests.conftest import unit_account

KAFKA = backend.KafkaOutput(host="127.0.0.1", port=9092, topic="t")
ALL = backend.ContainerLogs(all_namespaces=True)


def _spec(
    inp: backend.ContainerLogs | backend.HostLogs = ALL,
    output: backend.KafkaOutput | None = KAFKA,
    output_type: str = "kafka",
) -> backend.CollectorSpec:
    return backend.CollectorSpec("", inp, output_type, output)


def _refused(w: Work, spec: backend.CollectorSpec, name: str = "r") -> ApiError:
    cluster = backend.cluster_of(w, CLUSTER)
    with pytest.raises(ApiError) as err:
        backend.create_collector(w, cluster, name, spec)
    return err.value


def test_a_rule_is_stored_as_the_document_shows_it_and_wakes_the_shippers(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        cluster = backend.cluster_of(w, CLUSTER, changing=True)
        ckafka = backend.KafkaOutput("k.example", 9093, "t", instance_id="ck-1", topic_id="tp-1")
        made = backend.create_collector(
            w, cluster, "web", backend.CollectorSpec("d", ALL, "ckafka", ckafka)
        )
        assert w.effects.wake_logs
        assert (made.name, made.cluster_id, made.cluster_name) == ("web", CLUSTER, "unit")
        assert (made.input_type, made.output_type) == ("container-log", "ckafka")
        assert made.input_option == {"allNamespaces": True}
        assert list(made.output_option.items()) == [
            ("host", "k.example"),
            ("port", 9093),
            ("topic", "t"),
            ("instanceId", "ck-1"),
            ("topicId", "tp-1"),
        ]
        assert backend.name_taken(w, cluster, "web") and not backend.name_taken(w, cluster, "x")
        assert backend.collector(w, cluster, "web") == made
        # The same name again is taken.
        err = _refused(w, _spec(), "web")
        assert (err.code, err.code_desc, err.kind) == (
            4000,
            "LogCollectorExists",
            Kind.ALREADY_EXISTS,
        )


def test_what_a_rule_may_read_and_ship_to(services: Services, account: int) -> None:
    some = backend.NamespaceLogs
    cases: list[tuple[backend.ContainerLogs | backend.HostLogs, str]] = [
        (backend.ContainerLogs(True, (some("default", True),)), "inputOption.namespaces"),
        (backend.ContainerLogs(False), "inputOption.namespaces"),
        (backend.ContainerLogs(False, (some("nope", True),)), "inputOption.namespaces.0.namespace"),
        (
            backend.ContainerLogs(False, (some("default", True), some("default", True))),
            "inputOption.namespaces.1.namespace",
        ),
        (backend.ContainerLogs(False, (some("default", True, ("web",)),)), "namespaces.0.services"),
        (backend.ContainerLogs(False, (some("default", False),)), "namespaces.0.services"),
        (backend.ContainerLogs(False, (some("default", False, ("Web!",)),)), "services.0"),
        (backend.ContainerLogs(False, (some("default", False, ("a", "a")),)), "services"),
        (backend.HostLogs("/var/../etc/*"), "inputOption.path"),
        (backend.HostLogs("/var/log/"), "inputOption.path"),
        (backend.HostLogs("/var/log/a\0"), "inputOption.path"),
        (backend.HostLogs("/var/log/*", {"bad key": "x"}), "inputOption.labels.bad key"),
        (backend.HostLogs("/var/log/*", {"k": "x" * 1025}), "inputOption.labels.k"),
    ]
    with services.store.session() as s:
        w = Work(s, account, services)
        for inp, param in cases:
            err = _refused(w, _spec(inp))
            assert (err.code, err.kind) == (4000, Kind.INVALID), inp
            assert param in err.message, (inp, err.message)
        err = _refused(w, _spec(output=None, output_type="cls"))
        assert "outputType" in err.message and "CLS" in err.message
        # Nothing was made, nothing is to wake.
        assert s.scalars(select(LogCollector)).first() is None
        assert not w.effects.wake_logs
        # Named services of an existing namespace, and a machine file with labels, are fine.
        picked = backend.ContainerLogs(False, (some("kube-system", False, ("dns", "web")),))
        made = backend.create_collector(w, backend.cluster_of(w, CLUSTER), "a", _spec(picked))
        assert made.input_option == {
            "allNamespaces": False,
            "namespaces": [
                {"namespace": "kube-system", "allContainers": False, "services": ["dns", "web"]}
            ],
        }
        host = backend.HostLogs("/var/log/*.log", {"app": "x"})
        made = backend.create_collector(w, backend.cluster_of(w, CLUSTER), "b", _spec(host))
        assert made.input_option == {"path": "/var/log/*.log", "labels": {"app": "x"}}


def test_a_rule_changes_whole_and_forgets_offsets_of_another_kind_of_input(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        cluster = backend.cluster_of(w, CLUSTER)
        backend.create_collector(w, cluster, "r", _spec())
        rule = backend.find_collector(w, cluster, "r")
        s.add(LogOffset(rule_id=rule.id, node_id="ins-1", file_id="f", path="/p", offset=5))
        s.flush()
        # Same kind of input: the offsets stay.
        picked = backend.ContainerLogs(False, (backend.NamespaceLogs("default", True),))
        backend.update_collector(w, cluster, rule, _spec(picked))
        assert s.scalars(select(LogOffset)).first() is not None
        # A bad change is refused before anything changes.
        with pytest.raises(ApiError):
            backend.update_collector(w, cluster, rule, _spec(backend.HostLogs("/a/../b")))
        assert rule.input_type == "container-log"
        # Machine files instead: the offsets of the containers' logs go.
        changed = backend.update_collector(w, cluster, rule, _spec(backend.HostLogs("/var/log/x")))
        assert changed.input_type == "host-log"
        assert s.scalars(select(LogOffset)).first() is None
        total, page = backend.collectors(w, cluster, 0, 10)
        assert (total, [c.name for c in page]) == (1, ["r"])
        backend.delete_collector(w, cluster, "r")
        assert backend.collectors(w, cluster, 0, 10) == (0, [])
        with pytest.raises(ApiError) as err:
            backend.find_collector(w, cluster, "r")
        assert (err.value.code, err.value.kind) == (5000, Kind.NOT_FOUND)


def test_the_cluster_must_be_the_callers_and_settled_to_change(
    services: Services, account: int
) -> None:
    stranger = unit_account(services, 2)
    with services.store.session() as s:
        other = Work(s, stranger, services)
        with pytest.raises(ApiError) as err:
            backend.cluster_of(other, CLUSTER)
        assert err.value.code == 5000
        w = Work(s, account, services)
        s.get(Cluster, CLUSTER).status = "Deleting"  # type: ignore[union-attr]
        assert backend.cluster_of(w, CLUSTER).id == CLUSTER  # reads still work
        with pytest.raises(ApiError) as err:
            backend.cluster_of(w, CLUSTER, changing=True)
        assert (err.value.code, err.value.code_desc, err.value.kind) == (
            5100,
            "ClusterStateError",
            Kind.CONFLICT,
        )


def test_the_daemon_is_enabled_while_the_cluster_has_a_rule(
    services: Services, account: int
) -> None:
    with services.store.session() as s:
        w = Work(s, account, services)
        cluster = backend.cluster_of(w, CLUSTER)
        assert backend.daemon_status(w, cluster) == backend.DaemonStatus(False, 0, 0, "")
        backend.create_collector(w, cluster, "r", _spec())
        # No machine runs yet: enabled, nothing to schedule.
        assert backend.daemon_status(w, cluster) == backend.DaemonStatus(True, 0, 0, "")
