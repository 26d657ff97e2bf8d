"""The `openccs` command: call, administration, doctor, and the README it documents."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
