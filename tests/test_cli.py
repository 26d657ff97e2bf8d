"""The `openccs` command: call, administration, doctor, and the README it documents."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openccs.coverage import BEGIN, END, coverage_markdown

from .conftest import ROOT, Server


def test_call_prints_json_and_exits_by_code(server: Server) -> None:
    r = server.cli("call", "DescribeClusterTaskResult", "requestId=1000000000", check=False)
    assert r.returncode == 1
    assert json.loads(r.stdout)["code"] == 5000


def test_call_wait_follows_a_task_step_by_step(server: Server) -> None:
    r = server.cli("call", "OpenccsRunTestTask", "stepSeconds=0.05", "--wait", "--method", "GET")
    assert r.stdout.count("done  step") == 5
    assert r.stdout.strip().endswith("succ")
    r = server.cli("call", "OpenccsRunTestTask", "failAt=1", "stepSeconds=0", "--wait", check=False)
    assert r.returncode == 1 and "fail" in r.stdout


def test_call_table_output(server: Server) -> None:
    r = server.cli("call", "OpenccsRunTestTask", "stepSeconds=0", "--table")
    assert r.stdout.splitlines()[0].split() == ["FIELD", "VALUE"]
    assert "requestId" in r.stdout


def test_account_quota_show_and_set(server: Server) -> None:
    acct = server.new_account()
    r = server.cli("account", "quota", acct.uin, "clusters", "9")
    assert re.search(r"clusters\s+9", r.stdout)
    assert re.search(r"nodesPerCluster\s+20", r.stdout)
    r = server.cli("account", "quota", acct.uin, "bogus", "1", check=False)
    assert r.returncode == 1 and "unknown quota" in r.stderr


def test_key_and_subuser_listing(server: Server) -> None:
    acct = server.new_account()
    server.cli("subuser", "create", acct.uin, "--name", "ops", "--action", "DescribeCluster")
    keys = server.cli("key", "ls", acct.uin).stdout
    assert acct.secret_id in keys and keys.count("AKID") == 2
    subs = server.cli("subuser", "ls", acct.uin).stdout
    assert "ops" in subs and "DescribeCluster" in subs


def test_doctor_reports_each_check() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "openccs.cli.main", "doctor"], capture_output=True, text=True
    )
    assert r.returncode in (0, 1)
    assert "running as root" in r.stdout and "package docker.io" in r.stdout
    assert ("all good" in r.stdout) == (r.returncode == 0)


def test_readme_coverage_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END) + 1
    assert readme[start:end] == coverage_markdown(), "run: openccs coverage, paste into README"
    assert coverage_markdown().count("\n| ") == 95 + 2  # 95 actions, the header and its rule


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash scripts/dev serve", "bash scripts/dev test"]
    assert readme.index("```sh") < readme.index("\n## ")
    assert "bash scripts/dev test" in Path(ROOT / ".ci" / "run").read_text()


def test_call_wait_prints_the_actions_answer_then_the_task(server: Server) -> None:
    r = server.cli("call", "OpenccsRunTestTask", "stepSeconds=0", "--wait")
    answer, _, progress = r.stdout.partition("\n}\n")
    request_id = json.loads(answer + "}")["data"]["requestId"]
    assert f"task {request_id}: succ" in progress and "done  step" in progress
    r = server.cli("call", "OpenccsRunTestTask", "failAt=1", "stepSeconds=0", "--wait", check=False)
    answer, _, progress = r.stdout.partition("\n}\n")
    assert json.loads(answer + "}")["code"] == 0
    assert r.returncode == 1 and re.search(r"task \d+: fail", progress)


def test_create_cluster_names_every_missing_parameter_at_once(server: Server) -> None:
    r = server.cli("call", "CreateCluster", "clusterName=x", "cpu=2", check=False)
    res = json.loads(r.stdout)
    assert r.returncode == 1 and res["code"] == 4000 and res["codeDesc"] == "MissingParameter"
    named = res["message"].removeprefix("Missing required parameters ").split(", ")
    assert sorted(named) == sorted(
        ["zoneId", "mem", "bandwidthType", "bandwidth", "subnetId", "isVpcGateway", "rootSize",
         "storageSize", "goodsNum", "clusterCIDR", "osName", "vpcId"]
    )  # fmt: skip
    assert "data" not in res  # an error answer has no data (the README says so)


def test_listings_name_accounts_and_times_carry_their_zone(server: Server, tmp_path: Path) -> None:
    from openccs.tls import new_ca

    acct = server.new_account()
    cert, key = new_ca("cli-listing.example.com")
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    made = server.cli("cert", "upload", acct.uin, "--cert", str(tmp_path / "c.pem"),
                      "--key", str(tmp_path / "k.pem"))  # fmt: skip
    cert_id = json.loads(made.stdout)["certId"]
    try:
        for listing in (("key", "ls", acct.uin), ("cert", "ls", acct.uin)):
            lines = server.cli(*listing).stdout.splitlines()
            header = lines[0].split()
            assert "APPID" in header and "UIN" in header and "ACCOUNT" not in header
            row = lines[1].split()
            assert row[header.index("APPID")] == str(acct.app_id)
            assert row[header.index("UIN")] == acct.uin
        certs = server.cli("cert", "ls", acct.uin).stdout
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00", certs), certs
        vpcs = server.cli("vpc", "ls").stdout
        assert str(server.default.app_id) in vpcs and server.default.uin in vpcs
    finally:
        server.cli("cert", "delete", cert_id)
    token = json.loads(server.cli("metrics-token", "create", "--note", "zone").stdout)
    try:
        tokens = server.cli("metrics-token", "ls").stdout
        assert re.search(r"\d\d:\d\d:\d\d \+08:00", tokens), tokens
    finally:
        server.cli("metrics-token", "revoke", token["id"])


def test_cluster_create_in_one_line_then_delete_and_vpc_delete(server: Server) -> None:
    from openccs.cloud import naming
    from openccs.cloud.component import site_id
    from openccs.cloud.host import link_exists

    from .conftest import unique_vpc_cidr

    r = server.cli("cluster", "create", "oneline", "--machines", "1")
    answer, _, progress = r.stdout.partition("\n}\n")
    cluster_id = json.loads(answer + "}")["data"]["clusterId"]
    try:
        assert progress.strip().endswith("succ")
        listed = server.cli("cluster", "ls").stdout
        row = next(ln for ln in listed.splitlines() if cluster_id in ln)
        assert "Running" in row and server.default.uin in row and "+08:00" in row
        assert "1" in server.cli("node", "ls", cluster_id).stdout
        # The default VPC holds the cluster: it cannot go.
        vpc = next(word for word in row.split() if word.startswith("vpc-"))
        refused = server.cli("vpc", "delete", vpc, check=False)
        assert refused.returncode == 2 and cluster_id in refused.stderr
    finally:
        r = server.cli("cluster", "delete", cluster_id, check=False)
    assert r.returncode == 0 and r.stdout.strip().endswith("succ"), r.stdout + r.stderr
    assert cluster_id not in server.cli("cluster", "ls").stdout
    again = server.cli("cluster", "delete", cluster_id, check=False)
    assert again.returncode == 1 and json.loads(again.stdout)["code"] != 0

    acct = server.new_account()
    cidr = unique_vpc_cidr()
    made = server.cli("vpc", "create", acct.uin, "--cidr", cidr,
                      "--subnet", f"ap-guangzhou-3={cidr.replace('.0/20', '.0/24')}")  # fmt: skip
    vpc_id = json.loads(made.stdout)["vpcId"]
    bridge = naming.bridge(site_id(server.data_dir), vpc_id)
    assert link_exists(bridge)
    server.cli("vpc", "delete", vpc_id)
    assert not link_exists(bridge) and vpc_id not in server.cli("vpc", "ls").stdout
    assert server.cli("vpc", "delete", vpc_id, check=False).returncode == 2


def test_sweep_refuses_while_the_server_runs_and_all_keeps_live_sites(
    own_server: Server,
) -> None:
    from openccs.cloud import host, naming
    from openccs.cloud.component import site_id

    if own_server.backend != "sqlite":
        pytest.skip("the sweep does not depend on the store")
    site = site_id(own_server.data_dir)
    bridges = [n for n in host.list_links() if naming.is_site_object(n, site)]
    assert bridges  # the default VPC's bridge
    r = own_server.cli("sweep", check=False)
    assert r.returncode == 1 and f"pid {own_server.proc.pid}" in r.stderr  # type: ignore[union-attr]
    assert all(host.link_exists(b) for b in bridges)
    plan = own_server.cli("sweep", "--all", "--dry-run").stdout
    assert f"keep    site {site}: its server runs (pid {own_server.proc.pid}" in plan  # type: ignore[union-attr]
    # Without a terminal to ask on and without --yes, --all removes nothing.
    r = subprocess.run(
        [sys.executable, "-m", "openccs.cli.main", "--data-dir", str(own_server.data_dir),
         "sweep", "--all"], input="", capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert "give --yes" in r.stderr or "remove  site" not in r.stdout
    assert all(host.link_exists(b) for b in bridges)
    # A killed server's site is listed for removal, and its own sweep then works.
    own_server.kill9()
    plan = own_server.cli("sweep", "--all", "--dry-run").stdout
    assert f"remove  site {site}: no server runs" in plan
    r = own_server.cli("sweep")
    assert set(bridges) <= set(json.loads(r.stdout)["links"])
    assert not any(host.link_exists(b) for b in bridges)


def _readme_example() -> list[list[str]]:
    import shlex

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- example:begin -->\n```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(cmd, comments=True) for cmd in block.replace("\\\n", " ").splitlines()]


def test_readme_cluster_and_service_example_works(server: Server) -> None:
    from .conftest import unique_cluster_cidr
    from .workload_helpers import until

    commands = _readme_example()
    assert [c[:2] for c in commands] == [
        ["openccs", "call"]] * len(commands)  # fmt: skip
    c = server.client()
    vpc = next(v for v in c.call("DescribeVpcEx")["data"] if v["isDefault"])["unVpcId"]
    subnet = next(x for x in c.call("DescribeSubnetEx", {"vpcId": vpc})["data"]
                  if x["zone"] == "ap-guangzhou-3")["unSubnetId"]  # fmt: skip
    values = {"VPC": vpc, "SUBNET": subnet, "CLUSTER": ""}
    cluster = ""
    try:
        for argv in commands:
            args = [a.replace("=VPC", "=" + vpc).replace("=SUBNET", "=" + subnet)
                    .replace("=CLUSTER", "=" + values["CLUSTER"]) for a in argv[1:]]  # fmt: skip
            if args[1] == "CreateCluster":
                args = [a if not a.startswith("clusterCIDR=") else
                        "clusterCIDR=" + unique_cluster_cidr() for a in args]  # fmt: skip
            r = server.cli(*args, check=False)
            assert r.returncode == 0, (args, r.stdout, r.stderr)
            if args[1] == "CreateCluster":
                answer = json.loads(r.stdout.partition("\n}\n")[0] + "}")
                cluster = values["CLUSTER"] = answer["data"]["clusterId"]
                assert r.stdout.strip().endswith("succ")
            if args[1] == "CreateClusterService":
                where = {"clusterId": cluster, "serviceName": "web", "namespace": "default"}

                def two_running(where: dict[str, str] = where) -> list[Any]:
                    pods = c.call("DescribeServiceInstance", where)["data"]["instances"]
                    return [p for p in pods if p["status"] == "Running"][1:]

                assert until("two running pods", two_running, timeout=90)
            if args[1] == "DeleteCluster":
                cluster = ""
    finally:
        if cluster:
            server.cli("call", "DeleteCluster", f"clusterId={cluster}", "--wait", check=False)
