"""The agents of a cluster's machines go by what changed on their machine: a pod starting
or stopping on one machine leaves the other machine's agent without even a container list
(`openccs_agent_passes_total`, outcome skipped: its dockerd's event stream vouches for its
containers), containers killed or removed behind openccs's back are still noticed, a
broken event stream makes the agent list again, and pods still start, stop, get deleted
and move between the machines with the periodic resync set to an hour (nothing but the
machines' generations and dockerd's events wakes the agents)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openccs.client import Client
from openccs.engine.agent import NodeAgent
from openccs.engine.docker import EVENTS_IDLE_S

from .conftest import Server
from .workload_helpers import (
    Svc,
    agent_passes,
    call,
    cluster_env,
    create,
    http_get,
    metrics_token,
    node_of,
    socket_of,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("engine-machines")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str]]:
    base = tmp_path_factory.mktemp("engine-machines")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--engine-resync", "3600"))
    with cluster_env(srv, machines=2) as env:
        yield env


@pytest.fixture(scope="module")
def token(env: tuple[Server, Client, str]) -> Iterator[str]:
    with metrics_token(env[0], "agent passes") as made:
        yield made


def machines(c: Client, cluster: str) -> dict[str, str]:
    """Instance id -> LAN address of the cluster's machines."""
    nodes = call(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
    return {n["instanceId"]: n["lanIp"] for n in nodes}


def containers_of(srv: Server, instance_id: str, svc: Svc) -> list[str]:
    """The pods of the service's app containers (any state) on a machine, one a container."""
    sock = socket_of(srv, instance_id)
    out = subprocess.run(
        ["docker", "-H", f"unix://{sock}", "ps", "-a", "--filter", "label=openccs.role=app",
         "--format", '{{.Label "openccs.namespace"}} {{.Label "openccs.pod"}}'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [
        pod
        for namespace, pod in (line.split() for line in out.splitlines() if line.strip())
        if namespace == svc.namespace and pod.startswith(f"{svc.name}-")
    ]


def gone(svc: Svc) -> bool:
    """The service deleted, or all its pods."""
    r = svc.c.call("DescribeServiceInstance", svc.ref())
    return r["code"] != 0 or not r["data"]["instances"]


def settled(srv: Server, token: str, machine: str) -> float:
    """The machine's worked passes once two readings a second apart agree (the passes of
    what came before, the cluster's creation, are over)."""
    last = [-1.0]

    def same() -> bool:
        now = agent_passes(srv, token).get((machine, "worked"), 0.0)
        agreed, last[0] = now == last[0], now
        if not agreed:
            time.sleep(1)
        return agreed

    until(f"{machine}'s agent settled", same, 60)
    return last[0]


def test_pods_on_one_machine_leave_the_other_machines_agent_quiet(
    env: tuple[Server, Client, str], token: str
) -> None:
    srv, c, cluster = env
    a, b = sorted(machines(c, cluster))
    call(c, "ModifyClusterNodeLabel", clusterId=cluster, instanceId=a,
         labels=[{"key": "side", "value": "a"}])  # fmt: skip
    b_worked = settled(srv, token, b)
    before = agent_passes(srv, token)

    on_a = [{"key": "side", "operator": "In", "values": ["a"]}]
    svc = create(c, cluster, web("here", replicas=2, nodeAffinity=on_a))
    pods = svc.wait_normal(2)
    assert {p["nodeIp"] for p in pods} == {machines(c, cluster)[a]}
    assert sorted(http_get(p["ip"]) for p in pods) == sorted(p["name"] for p in pods)
    svc.call("ModifyServiceReplicas", scaleTo=1)
    until("one pod of here left", lambda: len(svc.pods()) == 1 and len(svc.running()) == 1)
    until("its stopped containers removed", lambda: len(containers_of(srv, a, svc)) == 1)

    after = agent_passes(srv, token)
    # Machine A's agent worked through two starts and a stop; B's was asked at each of
    # the cluster's passes and stopped every time without even listing its containers
    # (its dockerd's event stream was up and silent throughout).
    assert after.get((a, "worked"), 0) > before.get((a, "worked"), 0)
    assert after.get((b, "skipped"), 0) > before.get((b, "skipped"), 0)
    assert after.get((b, "quiet"), 0) == before.get((b, "quiet"), 0), (before, after)
    assert after.get((b, "worked"), 0) == b_worked, (before, after)
    assert containers_of(srv, b, svc) == []

    svc.call("DeleteClusterService")
    until("here's pods gone", lambda: gone(svc))
    until("here's containers removed from A", lambda: containers_of(srv, a, svc) == [])


def test_pods_start_stop_get_deleted_and_move_on_both_machines(
    env: tuple[Server, Client, str],
) -> None:
    srv, c, cluster = env
    a, b = sorted(machines(c, cluster))
    ips = machines(c, cluster)
    svc = create(c, cluster, web("both", replicas=2))
    pods = svc.wait_normal(2)
    assert {p["nodeIp"] for p in pods} == {ips[a], ips[b]}  # one on each machine
    assert sorted(http_get(p["ip"]) for p in pods) == sorted(p["name"] for p in pods)

    # Machine A cordoned, a redeploy replaces the pods: the new ones all run on B, and A's
    # agent stops and removes the old one.
    call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[a], unschedulable=1)
    try:
        old = {p["name"] for p in pods}
        svc.call("RedeployClusterService")

        def moved() -> bool:
            now = svc.running()
            return (
                len(svc.pods()) == 2
                and len(now) == 2
                and not old & {p["name"] for p in now}
                and {p["nodeIp"] for p in now} == {ips[b]}
            )

        until("both pods moved to B", moved, 120)
        until("A's containers of the service removed", lambda: containers_of(srv, a, svc) == [])
        assert all(http_get(p["ip"]) == p["name"] for p in svc.running())

        # A stop on B, then the deletion of the rest.
        svc.call("ModifyServiceReplicas", scaleTo=1)
        until("one pod left", lambda: len(svc.pods()) == 1 and len(svc.running()) == 1)
        until("B's stopped containers removed", lambda: len(containers_of(srv, b, svc)) == 1)
    finally:
        call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[a],
             unschedulable=0)  # fmt: skip
        svc.call("DeleteClusterService")
    until("both's pods gone", lambda: gone(svc))
    until("both's containers removed from B", lambda: containers_of(srv, b, svc) == [], 60)
    assert containers_of(srv, a, svc) == []


def docker_on(srv: Server, machine: str, *args: str) -> str:
    sock = socket_of(srv, machine)
    return subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def app_containers(srv: Server, machine: str, pod: str, running: bool = True) -> list[str]:
    """The ids of a pod's app containers on a machine (running ones, or all)."""
    filters = ["--filter", f"label=openccs.pod={pod}", "--filter", "label=openccs.role=app"]
    every = [] if running else ["-a"]
    return docker_on(srv, machine, "ps", "-q", "--no-trunc", *every, *filters).split()


def test_containers_killed_or_removed_behind_openccs_back_are_noticed(
    env: tuple[Server, Client, str], token: str
) -> None:
    srv, c, cluster = env
    svc = create(c, cluster, web("behind", replicas=1))
    try:
        (pod,) = svc.wait_normal(1)
        machine = node_of(c, cluster, pod["nodeIp"])
        other = next(m for m in machines(c, cluster) if m != machine)
        settled(srv, token, machine)
        # A change on the other machine runs the cluster's pass: this machine's agent skips
        # its container list, as it does in every pass while nothing happens.
        before = agent_passes(srv, token)
        call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[other],
             unschedulable=1)  # fmt: skip
        try:
            until("a skipped pass", lambda: agent_passes(srv, token).get((machine, "skipped"), 0)
                  > before.get((machine, "skipped"), 0))  # fmt: skip
        finally:
            call(c, "ModifyClusterNodeSchedulable", clusterId=cluster, instanceIds=[other],
                 unschedulable=0)  # fmt: skip

        # Killed: dockerd's die event wakes the agent, which restarts it after the back-off.
        (first,) = app_containers(srv, machine, pod["name"])
        docker_on(srv, machine, "kill", first)
        restarted = until(
            "the killed container restarted",
            lambda: [p for p in svc.running() if p["restartCount"] == 1],
            60,
        )
        (second,) = app_containers(srv, machine, pod["name"])
        assert second != first
        assert http_get(restarted[0]["ip"]) == restarted[0]["name"]

        # Removed (the running one, then the exited one kept for its logs, unless the agent,
        # woken by the first removal, already replaced it as the run it keeps): the pod gets
        # a running container again, and no container of the pod is left behind as removed.
        docker_on(srv, machine, "rm", "-f", second)
        sock = socket_of(srv, machine)
        gone_first = subprocess.run(["docker", "-H", f"unix://{sock}", "rm", "-f", first],
                                    capture_output=True, text=True, check=False)  # fmt: skip
        assert gone_first.returncode == 0 or "No such container" in gone_first.stderr, gone_first

        def replaced() -> list[str] | None:
            now = app_containers(srv, machine, pod["name"])
            ok = len(svc.running()) == 1 and len(now) == 1 and now[0] not in (first, second)
            return now if ok else None

        (third,) = until("the removed container replaced", replaced, 60)
        (now,) = svc.running()
        assert now["name"] == pod["name"]
        assert http_get(now["ip"]) == now["name"]
        assert app_containers(srv, machine, pod["name"], running=False) == [third]
    finally:
        svc.call("DeleteClusterService")
    until("behind's pods gone", lambda: gone(svc))


class Cuttable:
    """A unix socket in front of a machine's dockerd whose connections can be cut and
    refused for a while, as a restarting daemon does to its clients."""

    def __init__(self, target: Path, path: Path) -> None:
        self.target, self.path = target, path
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Every connection closed, and none accepted until `open()` again."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
            with self._lock:
                self.accepted += 1
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def test_a_broken_event_stream_makes_the_agent_list_again(
    env: tuple[Server, Client, str], tmp_path: Path
) -> None:
    """The agent's decision (`NodeAgent._skips`) fed by its real event watcher, following a
    machine's dockerd through a socket that can be cut. The agent here never runs a pass:
    it only watches, the machine's own agent stays the server's."""
    srv, c, cluster = env
    machine = sorted(machines(c, cluster))[0]
    front = Cuttable(socket_of(srv, machine), tmp_path / "docker.sock")
    front.open()
    woken: list[int] = []
    agent = NodeAgent(node_id="watcher", cluster_id=cluster, socket=front.path,
                      root_dir=tmp_path, resolve_image=None, dns_ip="",
                      notify=lambda: woken.append(1))  # fmt: skip
    try:
        # Not connected yet: a pass lists.
        agent.listed_with = agent.stream
        assert not agent._skips(agent.stream)
        agent.watch()
        until("the stream connected", lambda: agent.stream[0])
        assert agent.dirty and woken  # its first connection makes the next pass work
        agent.listed_with = agent.stream  # what a pass listing now notes
        assert agent._skips(agent.stream)

        # The routine reopen of an idle stream is no break.
        until("the idle stream reopened", lambda: front.accepted >= 2, EVENTS_IDLE_S * 4)
        until("connected again", lambda: agent.stream[0])
        assert agent._skips(agent.stream)

        # Cut: the stream is down, a pass lists; back: still lists (events were missed),
        # and the reconnection pokes the agent so that pass runs at once and works.
        agent.dirty, woken[:] = False, []
        front.cut()
        until("the stream seen broken", lambda: not agent.stream[0])
        assert not agent._skips(agent.stream)
        front.open()
        until("the stream connected again", lambda: agent.stream[0])
        assert not agent._skips(agent.stream)
        assert agent.dirty and woken
        agent.listed_with = agent.stream  # the next pass lists: then it may skip again
        assert agent._skips(agent.stream)
    finally:
        agent.close()
        front.cut()
