"""The registry and workloads together: services run private images of their owner from
openccs's registry; another account's private image cannot be pulled (ImagePullBackOff);
a push matching a trigger rolls the service to the new image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openccs.client import Client

from .conftest import Server
from .test_registry_lib import (
    PASSWORD,
    Registry,
    call_ok,
    push_ok,
    registry_of,
    tagged_image,
    wait_for,
)
from .workload_helpers import Svc, create, http_get, make_cluster, until

pytestmark = pytest.mark.xdist_group("registry-workloads")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Client, str, Registry]]:
    base = tmp_path_factory.mktemp("regwork")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--health-interval", "1"))
    try:
        srv.start()
        cluster = make_cluster(srv, machines=1)
        yield srv, srv.client(), cluster, registry_of(srv)
    finally:
        if srv.proc is not None:
            srv.stop()
        srv.sweep()


def served(image: str, name: str = "app") -> dict[str, object]:
    """A service running `image`'s /www with busybox httpd (the image is busybox-based)."""
    return {
        "serviceName": name,
        "replicas": 2,
        "accessType": "None",
        "containers": [
            {"containerName": "web", "image": image, "command": "httpd",
             "arguments": ["-f", "-p", "80", "-h", "/www"]},
        ],
    }  # fmt: skip


def test_private_image_runs_and_a_trigger_rolls_the_service(
    env: tuple[Server, Client, str, Registry], tmp_path: Path
) -> None:
    srv, c, cluster, reg = env
    call_ok(srv, None, "RegisterRepositoryAccountNew", password=PASSWORD)
    creds = f"{srv.default.uin}:{PASSWORD}"
    call_ok(srv, None, "CreateCCRNamespace", namespace="team")
    push_ok(reg, tagged_image(tmp_path, "v1"), "team/site:v1", creds, srv.default)
    svc = create(c, cluster, served(f"{reg.host}/team/site:v1"))
    pods = svc.wait_normal(2)
    assert all(http_get(p["ip"], path="/index.html") == "v1" for p in pods)
    assert "Pulled" in {e["reason"] for e in svc.events()}

    call_ok(
        srv, None, "AddUpdateServiceTrigger",
        triggerName="on-v", reponame="team/site", invokeMethod="regex", invokeExpr="^v",
        serviceName="app", clusterId=cluster, namespace="default", containerName="web",
        clusterRegion=1,
    )  # fmt: skip
    push_ok(reg, tagged_image(tmp_path, "v2"), "team/site:v2", creds, srv.default)
    until("pods serving v2", lambda: len(svc.running()) == 2 and len(svc.pods()) == 2
          and all(http_get(p["ip"], path="/index.html") == "v2" for p in svc.running()),
          120)  # fmt: skip
    logs = wait_for(
        lambda: call_ok(srv, None, "ListTriggerLog", reponame="team/site")["logInfo"],
        what="trigger log",
    )
    (entry,) = logs
    assert entry["tagName"] == "v2" and entry["invokeResult"]["returnCode"] == 0, entry
    before = svc.info()["containers"][0]["image"]
    push_ok(reg, tagged_image(tmp_path, "test1"), "team/site:test1", creds, srv.default)
    logs = call_ok(srv, None, "ListTriggerLog", reponame="team/site")["logInfo"]
    assert len(logs) == 1 and svc.info()["containers"][0]["image"] == before
    assert before.endswith("/team/site:v2")
    svc.call("DeleteClusterService")


def test_another_accounts_private_image_is_image_pull_back_off(
    env: tuple[Server, Client, str, Registry], tmp_path: Path
) -> None:
    srv, c, cluster, reg = env
    other = srv.new_account()
    call_ok(srv, other, "RegisterRepositoryAccountNew", password=PASSWORD)
    call_ok(srv, other, "CreateCCRNamespace", namespace="theirs")
    push_ok(reg, tagged_image(tmp_path, "s1"), "theirs/secret:s1", f"{other.uin}:{PASSWORD}",
            other)  # fmt: skip
    svc = create(c, cluster, served(f"{reg.host}/theirs/secret:s1", name="thief"))
    until("a pull failure", lambda: any(
        p["containers"] and p["containers"][0]["reason"] in ("ErrImagePull", "ImagePullBackOff")
        for p in svc.pods()), 60)  # fmt: skip
    until("ImagePullBackOff", lambda: any(p["containers"][0]["reason"] == "ImagePullBackOff"
          for p in svc.pods() if p["containers"]), 60)  # fmt: skip
    assert svc.info()["status"] == "Abnormal"
    assert not svc.running()
    Svc(c, cluster, "thief").call("DeleteClusterService")
