"""Restarts: openccs killed with -9 finds its registry again; a killed registry is started
again; a lost notification is repaired by reconciliation. No tag record is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import delete

from openccs.registry.models import CcrTag
from openccs.store.db import Store

from .conftest import Server
from .test_registry_lib import (
    call_ok,
    kill_registry,
    login,
    push_ok,
    registry_of,
    registry_pid,
    tagged_image,
    tags,
    wait_for,
    wait_tags,
)


def test_restarts_lose_no_tag_record(own_server: Server, tmp_path: Path) -> None:
    server = own_server
    try:
        acct = server.new_account()
        creds = login(server, acct)
        call_ok(server, acct, "CreateCCRNamespace", namespace="restart")
        reg = registry_of(server)
        push_ok(reg, tagged_image(tmp_path, "v1"), "restart/app:v1", creds, acct)
        first = registry_pid(server)
        assert first is not None

        # openccs dies hard: the registry keeps running and is adopted, not started twice.
        server.kill9()
        assert os.path.exists(f"/proc/{first}")
        server.start()
        assert registry_pid(server) == first
        push_ok(reg, tagged_image(tmp_path, "v2"), "restart/app:v2", creds, acct)
        assert set(tags(server, acct, "restart/app")) == {"v1", "v2"}

        # The registry dies: openccs starts it again, on the same port and storage.
        os.kill(first, signal.SIGKILL)
        wait_for(
            lambda: (pid := registry_pid(server)) not in (None, first) and pid,
            what="a new registry",
        )
        push_ok(reg, tagged_image(tmp_path, "v3"), "restart/app:v3", creds, acct)

        # A notification lost: the index forgets v1; reconciliation brings it back.
        url = server.db_url or f"sqlite:///{server.data_dir / 'openccs.db'}"
        store = Store(url)
        with store.session() as s:
            s.execute(delete(CcrTag).where(CcrTag.name == "v1"))
        store.dispose()
        assert set(tags(server, acct, "restart/app")) == {"v2", "v3"}
        call_ok(server, acct, "OpenccsRegistryMaintain")
        wait_tags(server, acct, "restart/app", {"v1", "v2", "v3"})

        # A clean stop stops the registry too.
        pid = registry_pid(server)
        server.stop()
        assert pid is not None and not os.path.exists(f"/proc/{pid}")
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
        kill_registry(server)


def test_sweep_stops_the_registry_a_killed_openccs_left(own_server: Server) -> None:
    server = own_server
    pid = registry_pid(server)
    assert pid is not None and Path(f"/proc/{pid}").exists()
    server.kill9()
    assert Path(f"/proc/{pid}").exists()  # the registry outlives a killed openccs...
    out = server.cli("sweep").stdout
    assert str(pid) in out
    # ...until the data directory's sweep.
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), what="registry gone")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
