"""What a user expects of the `openccs` command: options before or after the command,
`--version`, `-o json|table` on every listing, one-line errors with exit codes, and a
`--wait` that shows progress, can time out and can be interrupted."""

from __future__ import annotations

import ast
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import openccs

from .conftest import OPENCCS, ROOT, Server, free_port, unique_vpc_cidr

PACKAGE = ROOT / "openccs" / "cli"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OPENCCS, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def one_line_error(r: subprocess.CompletedProcess[str], code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openccs"), r.stderr
    return lines[0]


def request_id_of(stdout: str) -> int:
    return int(json.loads(stdout.partition("\n}\n")[0] + "}")["data"]["requestId"])


class AfterTheCommand(Server):
    """A server started, and the command line used, in the README's form: the data
    directory after the command (`openccs serve --data-dir DIR --http H:P`)."""

    def _base_args(self) -> list[str]:
        return list(OPENCCS)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return super().cli(args[0], "--data-dir", str(self.data_dir), *args[1:], check=check)


def test_the_readme_form_serve_with_the_data_directory_after_the_command(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    srv = AfterTheCommand(data_dir=data_dir, db_url=None, extra_args=("--data-dir", str(data_dir)))
    try:
        srv.start()
        endpoints = json.loads((data_dir / "server.json").read_text())
        assert endpoints["http"] == srv.http_url
        keys = srv.cli("key", "ls", "-o", "json").stdout
        assert srv.default.secret_id in {k["secretId"] for k in json.loads(keys)}
        # Before and after the command mean the same; after wins when both are given.
        before = run("--data-dir", str(data_dir), "account", "ls", "-o", "json").stdout
        mixed = run("--data-dir", str(tmp_path / "elsewhere"), "account", "ls",
                    "--data-dir", str(data_dir), "-o", "json").stdout  # fmt: skip
        assert json.loads(before) == json.loads(mixed) != []
        assert not (tmp_path / "elsewhere").exists()
        assert srv.stop() == 0
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"openccs {openccs.__version__}"


def test_every_listing_prints_a_table_or_json_alike(server: Server, tmp_path: Path) -> None:
    from openccs.tls import new_ca

    acct = server.new_account()
    server.cli("subuser", "create", acct.uin, "--name", "lister", "--action", "DescribeCluster")
    cert, key = new_ca("cli-habits.example.com")
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    cert_id = json.loads(server.cli("cert", "upload", acct.uin, "--cert", str(tmp_path / "c.pem"),
                                    "--key", str(tmp_path / "k.pem")).stdout)["certId"]  # fmt: skip
    token = json.loads(server.cli("metrics-token", "create", "--note", "habits").stdout)
    listings = [
        ("account", "ls"), ("account", "quota", acct.uin), ("key", "ls", acct.uin),
        ("subuser", "ls", acct.uin), ("cert", "ls", acct.uin), ("metrics-token", "ls"),
        ("vpc", "ls"), ("cluster", "ls"), ("fault", "ls"),
    ]  # fmt: skip
    try:
        for listing in listings:
            rows = json.loads(server.cli(*listing, "-o", "json").stdout)
            assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows), listing
            table = server.cli(*listing, "-o", "table").stdout
            assert table == server.cli(*listing).stdout, listing  # a table by default
            if not rows:
                assert table.strip() == "(none)", listing
                continue
            header = table.splitlines()[0].split()
            if listing[0] != "fault":  # fault ls shows some columns; JSON has them all
                assert header == [k.upper() for k in rows[0]], listing
            assert len(table.splitlines()) == len(rows) + 1, listing
        keys = json.loads(server.cli("key", "ls", acct.uin, "-o", "json").stdout)
        assert acct.secret_id in {k["secretId"] for k in keys}
        assert all(k["uin"] == acct.uin and k["enabled"] is True for k in keys)
        quotas = json.loads(server.cli("account", "quota", acct.uin, "-o", "json").stdout)
        assert any(q["quota"] == "clusters" and isinstance(q["value"], int) for q in quotas)
        # A record made is JSON by default, a field/value table with -o table.
        made = server.cli("key", "create", acct.uin, "-o", "table").stdout.splitlines()
        assert made[0].split() == ["FIELD", "VALUE"] and made[1].split()[0] == "secretId"
        # call: -o table is --table.
        answer = server.cli("call", "DescribeVpcEx", "-o", "table").stdout
        assert answer == server.cli("call", "DescribeVpcEx", "--table").stdout
        assert "UNVPCID" in answer.splitlines()[0].split()
    finally:
        server.cli("cert", "delete", cert_id)
        server.cli("metrics-token", "revoke", token["id"])
    r = server.cli("key", "ls", "-o", "yaml", check=False)
    assert "invalid choice: 'yaml'" in one_line_error(r, 2)


def test_failures_are_one_line_and_an_exit_code(server: Server, tmp_path: Path) -> None:
    cidr = unique_vpc_cidr()
    nobody = f"http://127.0.0.1:{free_port()}"
    r = server.cli("call", "DescribeVpcEx", "--endpoint", nobody, check=False)
    line = one_line_error(r, 2)
    assert f"cannot reach {nobody}" in line and "openccs serve" in line
    # Bad option values, before anything starts.
    for argv, words in [
        (("serve", "--node-port-range", "high-low"), "--node-port-range"),
        (("serve", "--http", "localhost"), "expected HOST:PORT"),
        (("serve", "--monitor-retention", "raw=forever"), "--monitor-retention"),
        (("serve", "--engine-resync", "soon"), "--engine-resync"),
        (("cluster", "create", "x", "--machines", "0"), "--machines"),
        (("call", "DescribeVpcEx", "--wait", "--timeout", "-1"), "--timeout"),
        (("call", "DescribeVpcEx", "--timeout", "5"), "--timeout goes with --wait"),
        (("call", "DescribeVpcEx", "=x"), "expected name=value"),
        (("vpc", "create", server.default.uin, "--cidr", cidr, "--subnet", "z"), "ZONE=CIDR"),
        (("no-such-command",), "invalid choice"),
    ]:  # fmt: skip
        r = server.cli(*argv, check=False)
        assert words in one_line_error(r, 2), (argv, r.stderr)
    assert cidr not in server.cli("vpc", "ls").stdout  # nothing half-made
    r = server.cli("cert", "upload", server.default.uin, "--cert", str(tmp_path / "none.pem"),
                   "--key", str(tmp_path / "none.pem"), check=False)  # fmt: skip
    assert str(tmp_path / "none.pem") in one_line_error(r, 2)
    # Lookups that find nothing: exit 1.
    assert "no cluster 'cls-nothing1'" in one_line_error(
        server.cli("node", "ls", "cls-nothing1", check=False), 1
    )
    assert "no cluster" in one_line_error(server.cli("asg", "ls", "cls-nothing1", check=False), 1)


def test_wait_shows_progress_and_time_on_stderr_and_gives_up_at_the_timeout(
    server: Server,
) -> None:
    r = server.cli("call", "OpenccsRunTestTask", "stepSeconds=0.4", "--wait")
    task = request_id_of(r.stdout)
    # Standard output stays what scripts read: the answer, the steps, the outcome.
    assert r.stdout.count("done  step") == 5 and r.stdout.strip().endswith(f"task {task}: succ")
    assert "steps done" not in r.stdout
    progress = r.stderr.splitlines()
    assert any(re.fullmatch(rf"task {task}: running, [0-4]/5 steps done, now step\d, "
                            r"\d+\.\d s", ln) for ln in progress), r.stderr  # fmt: skip
    assert re.fullmatch(rf"task {task} ended after \d+\.\d s", progress[-1]), r.stderr

    r = server.cli("call", "OpenccsRunTestTask", "stepSeconds=1", "--wait", "--timeout", "1.5",
                   check=False)  # fmt: skip
    task = request_id_of(r.stdout)
    assert r.returncode == 124, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"openccs: task {task} still running after 1.5 s; it goes on")
    assert f"requestId={task}" in last
    assert f"task {task}: succ" not in r.stdout
    # It went on without the command.
    assert server.wait_task(task)["status"] == "succ"
    # The cluster commands, which wait by default, take --timeout too.
    r = server.cli("cluster", "delete", "cls-nothing1", "--timeout", "5", check=False)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] != 0


def test_ctrl_c_during_wait_exits_130_in_one_line_and_the_task_goes_on(server: Server) -> None:
    proc = subprocess.Popen(
        [*server._base_args(), "call", "OpenccsRunTestTask", "stepSeconds=1", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("steps done" in ln for ln in seen):
            seen.append(proc.stderr.readline())
        assert any("steps done" in ln for ln in seen), seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    task = request_id_of(out)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith(f"openccs: interrupted; task {task} goes on")
    assert server.wait_task(task)["status"] == "succ"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_command_line_imports_no_action(server: Server) -> None:
    for path in PACKAGE.glob("*.py"):
        imported = _imports(path)
        assert not {m for m in imported if m.startswith("openccs.actions")}, path
        # Only `serve` starts the server (and so the wire layer and its actions).
        assert path.name == "serve.py" or "openccs.server" not in imported, path
    # At run time too: a call and the store's listings load no action module.
    acct = server.new_account()
    for argv in (("call", "DescribeVpcEx"), ("key", "ls", acct.uin), ("vpc", "ls"),
                 ("subuser", "ls"), ("fault", "ls"), ("cluster", "ls")):  # fmt: skip
        r = subprocess.run(
            [OPENCCS[0], "-X", "importtime", *OPENCCS[1:],
             "--data-dir", str(server.data_dir), *_db(server), *argv],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, (argv, r.stderr[-2000:])
        loaded = set(re.findall(r"\|\s+(openccs\.[\w.]+)", r.stderr))
        assert "openccs.cli.main" in loaded or "openccs.cli.context" in loaded, argv
        assert not {m for m in loaded if m.startswith(("openccs.actions", "openccs.server"))}, argv


def _db(server: Server) -> list[str]:
    return ["--database-url", server.db_url] if server.db_url else []


def test_on_a_terminal_the_task_state_is_one_line_rewritten_in_place(server: Server) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    try:
        r = subprocess.run(
            [*server._base_args(), "call", "OpenccsRunTestTask", "stepSeconds=0.4", "--wait"],
            stdout=subprocess.PIPE, stderr=slave, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed and everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert r.returncode == 0 and r.stdout.count("done  step") == 5
    text = shown.decode()
    # The state is drawn without a newline and erased before the next one.
    assert "steps done" in text and "\r\x1b[K" in text
    drawn = text.replace("\r\n", "\n").rstrip("\n")
    assert "\n" not in drawn, text  # one line, redrawn: no scrolling
    states = drawn.split("\r\x1b[K")
    assert len(states) >= 3 and all("steps done" in x for x in states[:-1]), states
    assert re.fullmatch(r"task \d+ ended after \d+\.\d s", states[-1]), states
