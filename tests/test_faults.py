"""Faults on purpose, for real, on a 2-machine cluster with a 3-replica service behind a load
balancer: the controllers react as they would in the cloud (pods replaced elsewhere,
containers restarted with back-off), traffic shows it, and ending a fault leaves the machine
as it was (network namespace, routes, iptables rules, cgroups), also across a kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openccs.client import Client
from openccs.timeutil import fmt_time, utcnow

from .conftest import Account, Server
from .test_kube import open_vip, security_info, write_kubeconfig
from .workload_helpers import (
    Svc,
    call,
    create,
    fault,
    in_machine,
    machine_netns,
    make_cluster,
    node_of,
    until,
    web,
)

pytestmark = pytest.mark.xdist_group("faults")

GRACE = 4  # --node-grace of the file's server


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str, Svc]]:
    base = tmp_path_factory.mktemp("faults")
    srv = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--node-grace", str(GRACE),
                    "--node-port-range", "30200-30300"),
    )  # fmt: skip
    try:
        srv.start()
        cluster = make_cluster(srv, machines=2)
        c = srv.client()
        spec = web("front", replicas=3)
        spec["accessType"] = "LoadBalancer"
        spec["portMappings"] = [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}]
        svc = create(c, cluster, spec)
        svc.wait_normal(3)
        until("load balancer", lambda: svc.info()["lbStatus"] == "Running", 60)
        yield srv, c, cluster, svc
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            # A frozen machine's processes could not be killed by the sweep: end every fault.
            with contextlib.suppress(Exception):
                c = srv.client()
                active = c.call("OpenccsDescribeFaults", {"state": "active", "limit": 100})
                for row in active["data"]["faults"]:
                    c.call("OpenccsEndFault", {"faultId": row["faultId"]})
            srv.stop()
        srv.sweep()


# -- helpers ----------------------------------------------------------------------------------
def nodes(c: Client, cluster: str) -> dict[str, dict[str, Any]]:
    data = call(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
    return {n["instanceId"]: n for n in data}


def busiest(c: Client, cluster: str, svc: Svc) -> str:
    """The machine running most of the service's pods."""
    ips = [p["nodeIp"] for p in svc.running()]
    return node_of(c, cluster, max(set(ips), key=ips.count))


def vip_of(svc: Svc) -> str:
    return str(svc.info()["externalIp"])


def answers(vip: str, n: int = 20) -> tuple[int, set[str]]:
    """How many of `n` requests through the load balancer failed, and who answered."""
    failed, seen = 0, set()
    for _ in range(n):
        try:
            seen.add(httpx.get(f"http://{vip}/index.html", timeout=2).text.strip())
        except httpx.HTTPError:
            failed += 1
    return failed, seen


def _sh(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def world(srv: Server, iid: str) -> dict[str, Any]:
    """What a fault may change on a machine: its namespace, links, routes, iptables rules,
    cgroups (the machine's own: what belongs to pods comes and goes with them)."""
    ns = machine_netns(srv, iid)
    rules = _sh(["ip", "netns", "exec", ns, "iptables-save"])
    rules_lines = sorted(
        re.sub(r"\[\d+:\d+\]", "", line)
        for line in rules.splitlines()
        # The service proxy's endpoint rules follow the pods (they move during a fault).
        if line and not line.startswith("#") and "DNAT --to-destination" not in line
    )
    site = (srv.data_dir / "site-id").read_text().strip()
    groups = []
    for controller in sorted(Path("/sys/fs/cgroup").iterdir()):
        base = controller / f"openccs-{site}" / iid
        if base.is_dir():
            # Containers' cgroups come and go meanwhile: never descend into one, and a
            # directory gone during the walk is just not there (os.walk skips it).
            for top, dirs, _files in os.walk(base):
                dirs[:] = [d for d in dirs if not re.search(r"[0-9a-f]{64}", d)]
                groups += [str((Path(top) / d).relative_to(controller.parent)) for d in dirs]
            state = base / "freezer.state"
            if state.exists():
                groups.append(f"{state}={state.read_text().strip()}")
    return {
        "netns": Path(f"/var/run/netns/{ns}").exists(),
        # Pods' veths come and go with the pods (and docker0 is down while it has none).
        "links": sorted(
            line.split(":")[1].strip().split("@")[0]
            for line in _sh(["ip", "-n", ns, "-o", "link"]).splitlines()
            if not line.split(":")[1].strip().startswith("veth")
        ),
        "routes": sorted(
            line.replace(" linkdown", "")
            for line in _sh(["ip", "-n", ns, "route", "show", "table", "all"]).splitlines()
            # IPv6 link-local addresses follow a bridge's MAC, new when dockerd boots.
            if " dev veth" not in line and "fe80::" not in line
        ),
        "iptables": rules_lines,
        "cgroups": sorted(groups),
    }


def restored(srv: Server, iid: str, before: dict[str, Any]) -> None:
    """The machine is as it was (the controllers' own repairs, such as routes to the other
    machines' pods added back once it is Running, may take a pass)."""

    def diff() -> dict[str, Any]:
        now = world(srv, iid)
        return {k: (sorted(set(map(str, now[k])) ^ set(map(str, before[k])))
                    if isinstance(now[k], list) else (now[k], before[k]))
                for k in now if now[k] != before[k]}  # fmt: skip

    deadline = time.monotonic() + 30
    while (left := diff()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left


def silent(ip: str, port: int = 80) -> bool:
    """No answer at all (no refusal either) within a second."""
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(1)
        try:
            sock.connect((ip, port))
        except TimeoutError:
            return True
        except OSError:
            return False
    return False


def back_to_normal(c: Client, cluster: str, svc: Svc, iid: str) -> None:
    until("machine normal", lambda: nodes(c, cluster)[iid]["isNormal"] == 1, 90)
    svc.wait_normal(3, timeout=120)


# -- tests ------------------------------------------------------------------------------------
def test_a_stopped_machine_goes_silent_its_pods_move_and_start_restores_it(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    lan_ip = nodes(c, cluster)[iid]["lanIp"]
    before = world(srv, iid)
    vip = vip_of(svc)
    fid = call(c, "OpenccsCreateFault", kind="machine-stop", instanceId=iid, duration=600)[
        "faultId"
    ]
    assert fid.startswith("flt-") and fault(c, fid)["state"] == "active"
    assert silent(lan_ip)
    until("node abnormal", lambda: nodes(c, cluster)[iid]["isNormal"] == 0, 30)
    # After --node-grace its pods are replaced on the other machine, and traffic recovers.
    until("3 pods Running elsewhere",
          lambda: [p["nodeIp"] for p in svc.running()].count(lan_ip) == 0
          and len(svc.running()) == 3, 90)  # fmt: skip
    until("every request served", lambda: answers(vip)[0] == 0, 60)
    reasons = {e["reason"] for e in svc.events()}
    assert {"FaultInjected", "NodeNotReady"} <= reasons, reasons
    assert fid in [f["faultId"] for f in call(c, "OpenccsDescribeFaults", state="active")["faults"]]

    ended = call(c, "OpenccsEndFault", faultId=fid)
    assert ended["state"] == "ended" and ended["endedTime"]
    until("node normal again", lambda: nodes(c, cluster)[iid]["isNormal"] == 1, 90)
    assert not silent(lan_ip)  # the address answers again (a refusal is an answer)
    restored(srv, iid, before)
    assert "FaultEnded" in {e["reason"] for e in svc.events()}
    report = call(c, "OpenccsDescribeFaultReport", faultId=fid)
    (row,) = [r for r in report["services"] if r["serviceName"] == "front"]
    assert row["podsLost"] >= 1 and row["podsStarted"] >= 1, row
    assert row["state"] == "full strength" and row["secondsToRecovery"] > 0, row
    back_to_normal(c, cluster, svc, iid)


def test_a_killed_pod_restarts_and_the_fault_is_listed(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    pod = svc.running()[0]
    before = pod["restartCount"]
    fid = call(c, "OpenccsCreateFault", kind="pod-kill", clusterId=cluster,
               podName=pod["name"])["faultId"]  # fmt: skip
    assert fault(c, fid)["state"] == "ended"  # a one-shot fault
    until("restarted", lambda: next(p for p in svc.pods() if p["name"] == pod["name"])
          ["restartCount"] > before, 60)  # fmt: skip
    until("every request served", lambda: answers(vip_of(svc))[0] == 0, 60)
    events = svc.events()
    assert any(e["reason"] == "FaultInjected" and pod["name"] in e["message"] for e in events)
    # The CLI lists it, and reports it.
    out = srv.cli("fault", "ls", "--cluster", cluster).stdout
    assert fid in out and "pod-kill" in out
    report = json.loads(srv.cli("fault", "report", fid).stdout)
    assert report["code"] == 0 and report["data"]["podName"] == pod["name"]
    # kubectl shows the fault as an event of the pod.
    open_vip(srv, c, cluster)
    kubeconfig = srv.data_dir.parent / "kubeconfig"
    info = security_info(c, cluster)
    write_kubeconfig(kubeconfig, cluster, info, info["password"])
    out = subprocess.run(
        ["kubectl", "get", "events", "-n", "default", "-o", "json"], capture_output=True,
        text=True, timeout=60, check=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(srv.data_dir.parent)},
    ).stdout  # fmt: skip
    injected = [e for e in json.loads(out)["items"] if e["reason"] == "FaultInjected"]
    assert any(e["involvedObject"]["name"] == pod["name"] for e in injected), injected
    svc.wait_normal(3)


def test_net_cut_silences_the_machine_and_ends_on_time_across_a_kill_9(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    pod_ip = next(p["ip"] for p in svc.running()
                  if node_of(c, cluster, p["nodeIp"]) == iid)  # fmt: skip
    lan_ip = nodes(c, cluster)[iid]["lanIp"]
    before = world(srv, iid)
    fid = call(c, "OpenccsCreateFault", kind="net-cut", instanceId=iid, duration=15)["faultId"]
    assert silent(pod_ip)  # the pod behind the machine is cut off from the VPC and the host
    assert world(srv, iid)["iptables"] != before["iptables"]
    # Its dockerd still answers on its socket, but the control plane reaches a node over the
    # VPC: the node is unreachable, as in the cloud, and its services are told.
    until("node abnormal", lambda: nodes(c, cluster)[iid]["isNormal"] == 0, 30)
    assert "unreachable" in nodes(c, cluster)[iid]["abnormalReason"]
    node_events = [e for e in svc.events() if e["objType"] == "Node" and e["objName"] == lan_ip]
    assert {"FaultInjected", "NodeNotReady"} <= {e["reason"] for e in node_events}, node_events
    ends = fault(c, fid)["endTime"]
    srv.kill9()
    until("the fault due while openccs is down", lambda: fmt_time(utcnow()) > ends, 30, every=0.5)
    srv.start()
    until("fault ended after the restart", lambda: fault(c, fid)["state"] == "ended", 30)
    restored(srv, iid, before)
    assert not silent(pod_ip)
    back_to_normal(c, cluster, svc, iid)


def test_one_way_cut_and_packet_loss_restore_the_rules(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    pod_ip = next(p["ip"] for p in svc.running()
                  if node_of(c, cluster, p["nodeIp"]) == iid)  # fmt: skip
    before = world(srv, iid)
    for params in ({"kind": "net-cut", "direction": "out"}, {"kind": "net-loss", "percent": 100}):
        fid = call(c, "OpenccsCreateFault", instanceId=iid, duration=300, **params)["faultId"]
        rules = "\n".join(world(srv, iid)["iptables"])
        if params["kind"] == "net-cut":
            assert "-o eth0 -j DROP" in rules and "-i eth0 -j DROP" not in rules
        else:
            assert "--mode random --probability 1" in rules
        assert silent(pod_ip)  # the answers (out) or everything (100 % loss) are dropped
        assert fault(c, fid)["params"] == {k: v for k, v in params.items() if k != "kind"}
        call(c, "OpenccsEndFault", faultId=fid)
        restored(srv, iid, before)
        assert not silent(pod_ip)
        # The health check may have seen the machine silent: faults are only injected into a
        # Running machine, so the next one waits for it to be Running again.
        until("machine normal", lambda: nodes(c, cluster)[iid]["isNormal"] == 1, 90)
    back_to_normal(c, cluster, svc, iid)


def json_docs(text: str) -> list[Any]:
    """The JSON documents a command printed one after the other."""
    docs, at, decoder = [], 0, json.JSONDecoder()
    while rest := text[at:].lstrip():
        doc, at = decoder.raw_decode(text, len(text) - len(rest))
        docs.append(doc)
    return docs


def test_a_probe_loop_counts_the_requests_that_failed_through_the_load_balancer(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    url = f"http://{vip_of(svc)}/index.html"
    a, b = sorted(nodes(c, cluster))
    worlds = {m: world(srv, m) for m in (a, b)}
    # Only the account's own load balancers are probed (openccs sends from the host).
    for bad in ("http://127.0.0.1:8080/", "ftp://" + vip_of(svc) + "/", "http://[::1"):
        res = c.call("OpenccsCreateFault", {"kind": "net-cut", "instanceId": a, "probeUrl": bad})
        assert res["code"] == 4000 and "probeUrl" in res["message"], (bad, res)
    other = srv.client(srv.new_account())
    res = other.call("OpenccsCreateFault", {"kind": "net-cut", "instanceId": a, "probeUrl": url})
    assert res["code"] == 5000, res
    # Both machines cut off: the load balancer has nowhere to send the requests. The CLI
    # waits for the fault's end and for openccs' probe loop to see the service answer again.
    # The second machine is cut once the CLI's fault is on (the CLI's own start can take
    # seconds on a loaded host), for less time than the first.
    cli = srv.cli_popen("fault", "inject", "net-cut", "--instance", a, "--duration", "8",
                        "--probe", url)  # fmt: skip
    try:
        until("the CLI's fault on", lambda: any(
            f["instanceId"] == a and f["kind"] == "net-cut"
            for f in call(c, "OpenccsDescribeFaults", state="active")["faults"]), 60)  # fmt: skip
        second = call(c, "OpenccsCreateFault", kind="net-cut", instanceId=b, duration=5)["faultId"]
        out, err = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err
    created, report = json_docs(out)
    fid = created["data"]["faultId"]
    assert report["code"] == 0 and report["data"]["faultId"] == fid, report
    probe = report["data"]["probe"]
    assert probe["url"] == url and not probe["running"], probe
    # Requests failed during the cut, and answered after it.
    assert probe["requests"] > probe["failed"] >= 1, probe
    assert probe["lastError"] and probe["lastFailedTime"] and probe["secondsToRecovery"] > 0
    assert fault(c, fid)["params"]["probeUrl"] == url
    # The extension action reports the same numbers from the store.
    assert call(c, "OpenccsDescribeFaultReport", faultId=fid)["probe"] == probe
    until("both faults ended", lambda: fault(c, second)["state"] == "ended", 30)
    for m in (a, b):
        restored(srv, m, worlds[m])
    for m in (a, b):
        back_to_normal(c, cluster, svc, m)


def connect_from(srv: Server, iid: str, ip: str, port: int) -> str:
    code = (
        "import socket\ns = socket.socket()\ns.settimeout(3)\n"
        f"try:\n    s.connect(({ip!r}, {port}))\n    print('ok')\n"
        "except ConnectionRefusedError:\n    print('refused')\n"
        "except OSError as exc:\n    print('error', exc)\n"
    )
    return in_machine(srv, iid, code)


def test_the_registry_refuses_or_stalls_pulls_of_a_machine_or_a_cluster(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    before = world(srv, iid)
    fid = call(c, "OpenccsCreateFault", kind="registry-cut", instanceId=iid, duration=300)[
        "faultId"
    ]
    (rule,) = [r for r in world(srv, iid)["iptables"] if "REJECT" in r and "--dport" in r]
    gateway = re.search(r"-d (\S+)/32", rule).group(1)  # type: ignore[union-attr]
    port = int(re.search(r"--dport (\d+)", rule).group(1))  # type: ignore[union-attr]
    assert connect_from(srv, iid, gateway, port) == "refused"
    assert svc.running()  # the rest of its traffic flows
    until("every request served", lambda: answers(vip_of(svc))[0] == 0, 30)
    call(c, "OpenccsEndFault", faultId=fid)
    assert connect_from(srv, iid, gateway, port) == "ok"
    restored(srv, iid, before)
    # For every machine of the cluster, the registry refuses pulls, or stalls them.
    machines = list(nodes(c, cluster))
    worlds = {m: world(srv, m) for m in machines}
    for kind, seen in (("registry-refuse", "refused"), ("registry-stall", "error timed out")):
        fid = call(c, "OpenccsCreateFault", kind=kind, clusterId=cluster, duration=300)["faultId"]
        assert sorted(fault(c, fid)["params"]["machines"]) == sorted(machines)
        for m in machines:
            assert connect_from(srv, m, gateway, port) == seen, (kind, m)
        call(c, "OpenccsEndFault", faultId=fid)
        for m in machines:
            assert connect_from(srv, m, gateway, port) == "ok"
            restored(srv, m, worlds[m])


def test_dockerd_kill_and_freeze_are_undone(env: tuple[Server, Client, str, Svc]) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    before = world(srv, iid)
    fid = call(c, "OpenccsCreateFault", kind="machine-freeze", instanceId=iid, duration=300)[
        "faultId"
    ]
    frozen = [g for g in world(srv, iid)["cgroups"] if g.endswith("freezer.state=FROZEN")]
    assert frozen
    # A second fault that takes the machine down is refused while this one is active.
    res = c.call("OpenccsCreateFault", {"kind": "machine-stop", "instanceId": iid})
    assert res["code"] == 5100 and fid in res["message"]
    # Its health checks time out: abnormal, its pods replaced on the other machine, and the
    # load balancer serves every request again.
    until("node abnormal", lambda: nodes(c, cluster)[iid]["isNormal"] == 0, 30)
    lan_ip = nodes(c, cluster)[iid]["lanIp"]
    until("3 pods Running elsewhere",
          lambda: [p["nodeIp"] for p in svc.running()].count(lan_ip) == 0
          and len(svc.running()) == 3, 90)  # fmt: skip
    until("every request served", lambda: answers(vip_of(svc))[0] == 0, 60)
    call(c, "OpenccsEndFault", faultId=fid)
    restored(srv, iid, before)
    back_to_normal(c, cluster, svc, iid)

    fid = call(c, "OpenccsCreateFault", kind="dockerd-kill", instanceId=iid, duration=2)["faultId"]
    until("dockerd back after the fault", lambda: fault(c, fid)["state"] == "ended", 60)
    back_to_normal(c, cluster, svc, iid)
    assert world(srv, iid)["iptables"] == before["iptables"]
    until("every request served", lambda: answers(vip_of(svc))[0] == 0, 60)


def test_a_reboot_boots_the_machine_again_at_once(env: tuple[Server, Client, str, Svc]) -> None:
    srv, c, cluster, svc = env
    iid = busiest(c, cluster, svc)
    before = world(srv, iid)
    fid = call(c, "OpenccsCreateFault", kind="machine-reboot", instanceId=iid, duration=0)[
        "faultId"
    ]
    # The machine goes down during the call and boots again when the fault ends (next pass).
    until("rebooted", lambda: fault(c, fid)["state"] == "ended", 60)
    assert "FaultEnded" in {e["reason"] for e in svc.events()}
    back_to_normal(c, cluster, svc, iid)
    restored(srv, iid, before)
    until("every request served", lambda: answers(vip_of(svc))[0] == 0, 60)


def test_faults_are_refused_for_other_accounts_and_bad_input_changes_nothing(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    iid = next(iter(nodes(c, cluster)))
    count = call(c, "OpenccsDescribeFaults")["totalCount"]
    other = srv.client(srv.new_account())
    res = other.call("OpenccsCreateFault", {"kind": "machine-stop", "instanceId": iid})
    assert res["code"] == 5000 and "instanceId" in res["message"], res
    pod = svc.running()[0]["name"]
    res = other.call("OpenccsCreateFault", {"kind": "pod-kill", "clusterId": cluster,
                                            "podName": pod})  # fmt: skip
    assert res["code"] == 5000, res
    assert other.call("OpenccsDescribeFaults", {})["data"]["totalCount"] == 0
    # A sub-account needs the machine in its allow-list.
    out = json.loads(srv.cli("subuser", "create", srv.default.uin, "--action", "*",
                             "--resource", "cls-elsewhere*").stdout)  # fmt: skip
    sub = srv.client(Account(0, out["uin"], out["secretId"], out["secretKey"]))
    res = sub.call("OpenccsCreateFault", {"kind": "net-cut", "instanceId": iid})
    assert res["code"] == 4102 and iid in res["message"], res
    assert sub.call("OpenccsDescribeFaults", {})["data"]["totalCount"] == 0
    for params, name in (
        ({"kind": "power-off", "instanceId": iid}, "kind"),
        ({"kind": "net-cut", "instanceId": iid, "duration": -1}, "duration"),
        ({"kind": "net-cut", "instanceId": iid, "direction": "sideways"}, "direction"),
        ({"kind": "net-loss", "instanceId": iid, "percent": 101}, "percent"),
        ({"kind": "net-cut"}, "instanceId"),
        ({"kind": "pod-kill", "clusterId": cluster}, "podName"),
        ({"kind": "registry-stall", "instanceId": iid}, "clusterId"),
        ({"kind": "pod-liveness", "clusterId": cluster}, "podName"),
        ({"kind": "net-cut", "instanceId": iid, "probeUrl": "http://10.9.9.9/"}, "probeUrl"),
        # A machine whose disk is a directory of the host: filling it would fill the host.
        ({"kind": "disk-fill", "clusterId": cluster, "podName": pod}, "--machine-disks loop"),
    ):
        res = c.call("OpenccsCreateFault", params)
        assert res["code"] == 4000 and name in res["message"], (params, res)
    res = c.call("OpenccsEndFault", {"faultId": "flt-nothere"})
    assert res["code"] == 5000 and "faultId" in res["message"]
    assert call(c, "OpenccsDescribeFaults")["totalCount"] == count


# Last: the service it makes and deletes would change the machines' rules under the others.
def test_a_failing_liveness_probe_restarts_the_container_until_the_fault_ends(
    env: tuple[Server, Client, str, Svc],
) -> None:
    srv, c, cluster, svc = env
    spec = web("alive", replicas=1)
    spec["containers"][0]["healthCheck"] = [
        {"type": "liveCheck", "checkMethod": "methodTcp", "port": 80, "intervalTime": 2,
         "unhealthNum": 2},
    ]  # fmt: skip
    alive = create(c, cluster, spec)
    try:
        (pod,) = alive.wait_normal(1)
        # A pod without a liveness probe has nothing to fail.
        res = c.call("OpenccsCreateFault", {"kind": "pod-liveness", "clusterId": cluster,
                                            "podName": svc.running()[0]["name"]})  # fmt: skip
        assert res["code"] == 4000 and "liveness probe" in res["message"], res
        fid = call(c, "OpenccsCreateFault", kind="pod-liveness", clusterId=cluster,
                   podName=pod["name"], duration=300)["faultId"]  # fmt: skip
        assert fault(c, fid)["state"] == "active"
        # The prober's set is in memory: a kill -9 of openccs does not end the fault.
        srv.kill9()
        srv.start()
        until("restarted", lambda: alive.pods()[0]["restartCount"] > pod["restartCount"], 90)
        events = alive.events()
        reasons = {e["reason"] for e in events}
        assert {"FaultInjected", "Unhealthy", "Killing"} <= reasons, reasons
        assert any(e["reason"] == "Unhealthy" and fid in e["message"] for e in events)
        assert call(c, "OpenccsEndFault", faultId=fid)["state"] == "ended"
        # The prober probes for real again: the pod is ready and stays so.
        (after,) = alive.wait_normal(1, timeout=120)
        time.sleep(6)  # three liveness periods
        (now,) = alive.pods()
        assert now["status"] == "Running" and now["restartCount"] == after["restartCount"], now
        assert "FaultEnded" in {e["reason"] for e in alive.events()}
    finally:
        alive.call("DeleteClusterService")
