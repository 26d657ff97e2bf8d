"""The registry with real clients: skopeo pushes and pulls through openccs's token server,
and the tag index, pull counts, copies, deletions and garbage collection that follow."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from openccs.registry.images import random_image

from .conftest import Account, Server
from .test_registry_lib import (
    Registry,
    call_ok,
    denied,
    inspect_raw,
    login,
    pull,
    push,
    push_ok,
    registry_of,
    tagged_image,
    tags,
    tls,
    wait_for,
    wait_tags,
)


@pytest.fixture
def reg(server: Server) -> Registry:
    return registry_of(server)


def owner(server: Server, ns: str) -> tuple[Account, str]:
    """A new account with a registry login and a namespace."""
    acct = server.new_account()
    creds = login(server, acct)
    call_ok(server, acct, "CreateCCRNamespace", namespace=ns)
    return acct, creds


def unique(prefix: str) -> str:
    import secrets

    return f"{prefix}{secrets.token_hex(3)}"


def test_push_then_pull_back_the_same_image(server: Server, reg: Registry, tmp_path: Path) -> None:
    ns = unique("pp")
    acct, creds = owner(server, ns)
    built = tagged_image(tmp_path, "v1")
    push_ok(reg, built, f"{ns}/app:v1", creds, acct)
    # The first push created the repository, private.
    info = call_ok(server, acct, "GetRepositoryInfo", reponame=f"{ns}/app")
    assert info["public"] == 0 and info["reponame"] == f"{ns}/app"
    raw = inspect_raw(reg, f"{ns}/app:v1", creds)
    assert raw.returncode == 0, raw.stderr
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == built.manifest_digest
    r = pull(reg, f"{ns}/app:v1", creds, tmp_path / "pulled")
    assert r.returncode == 0, r.stderr
    layout = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert layout["manifests"][0]["digest"] == built.manifest_digest
    assert (tmp_path / "pulled" / "blobs" / "sha256" / built.config_digest[7:]).exists()


def test_anonymous_pull_of_public_only(server: Server, reg: Registry, tmp_path: Path) -> None:
    ns = unique("an")
    acct, creds = owner(server, ns)
    push_ok(reg, tagged_image(tmp_path, "v1"), f"{ns}/web:v1", creds, acct)
    assert denied(inspect_raw(reg, f"{ns}/web:v1", None))
    call_ok(server, acct, "UpdateRepositoryPublic", reponame=f"{ns}/web", public=1)
    r = inspect_raw(reg, f"{ns}/web:v1", None)
    assert r.returncode == 0, r.stderr
    # Anonymous users never push, even into a public repository.
    assert denied(push(reg, tagged_image(tmp_path, "v2"), f"{ns}/web:v2", None))


def test_another_account_can_neither_pull_private_nor_push(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("ot")
    acct, creds = owner(server, ns)
    push_ok(reg, tagged_image(tmp_path, "v1"), f"{ns}/secret:v1", creds, acct)
    other = server.new_account()
    other_creds = login(server, other)
    assert denied(inspect_raw(reg, f"{ns}/secret:v1", other_creds))
    assert denied(push(reg, tagged_image(tmp_path, "x"), f"{ns}/secret:x", other_creds))
    assert denied(push(reg, tagged_image(tmp_path, "y"), f"{ns}/newrepo:y", other_creds))
    # And the API does not show it to them either.
    res = server.client(other).call("GetTagList", {"reponame": f"{ns}/secret"})
    assert res["code"] == 5000


def test_wrong_password_gets_no_token(server: Server, reg: Registry, tmp_path: Path) -> None:
    ns = unique("wp")
    acct, _creds = owner(server, ns)
    r = push(reg, tagged_image(tmp_path, "v1"), f"{ns}/a:v1", f"{acct.uin}:wrong-password")
    assert r.returncode != 0
    token = httpx.get(
        f"{server.https_url}/ccr/token",
        params={"service": "openccs-registry", "scope": f"repository:{ns}/a:pull"},
        auth=(acct.uin, "wrong-password"),
        verify=tls(server),
    )
    assert token.status_code == 401


def test_sub_account_rights_follow_its_allowed_actions(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("sa")
    acct, creds = owner(server, ns)
    push_ok(reg, tagged_image(tmp_path, "v1"), f"{ns}/app:v1", creds, acct)
    out = json.loads(
        server.cli(
            "subuser", "create", acct.uin,
            "--action", "RegisterRepositoryAccountNew",
            "--action", "GetTagList",
            "--resource", f"{ns}/*",
        ).stdout
    )  # fmt: skip
    sub = Account(acct.app_id, out["uin"], out["secretId"], out["secretKey"])
    res = server.client(sub).call("CreateCCRNamespace", {"namespace": unique("sb")})
    assert res["code"] == 4101
    sub_creds = login(server, sub)
    assert sub_creds.startswith(out["uin"] + ":")
    # Allowed GetTagList: may pull; not allowed DuplicateImage: may not push.
    assert inspect_raw(reg, f"{ns}/app:v1", sub_creds).returncode == 0
    assert denied(push(reg, tagged_image(tmp_path, "v2"), f"{ns}/app:v2", sub_creds))
    assert set(tags(server, sub, f"{ns}/app")) == {"v1"}


def test_tag_list_shows_true_sizes_and_config_fields(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("tl")
    acct, creds = owner(server, ns)
    built = tagged_image(tmp_path, "nginx_v1", author="someone", docker_version="1.12.5")
    push_ok(reg, built, f"{ns}/kubetest:nginx_v1", creds, acct)
    data = call_ok(server, acct, "GetTagList", reponame=f"{ns}/kubetest", tag="nginx")
    assert data["reponame"] == f"{ns}/kubetest" and data["server"] == reg.host
    assert data["tagCount"] == 1
    t = data["tagInfo"][0]
    assert t["repo_name"] == "kubetest" and t["tagName"] == "nginx_v1"
    assert t["tagId"] == built.manifest_digest and t["imageId"] == built.config_digest
    assert t["sizeByte"] == built.size and t["size"] == f"{built.size / 1e6:.1f} MB"
    assert (t["architecture"], t["os"], t["author"], t["dockerVersion"]) == (
        "amd64", "linux", "someone", "1.12.5",
    )  # fmt: skip
    when = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0800 CST$")
    assert all(when.match(t[k]) for k in ("creationTime", "updateTime", "pushTime")), t
    assert (
        call_ok(server, acct, "GetTagList", reponame=f"{ns}/kubetest", tag="zzz")["tagCount"] == 0
    )


def _bearer(server: Server, creds: str, repo: str) -> str:
    user, _, password = creds.partition(":")
    r = httpx.get(
        f"{server.https_url}/ccr/token",
        params={"service": "openccs-registry", "scope": f"repository:{repo}:pull"},
        auth=(user, password),
        verify=tls(server),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_pull_count_counts_manifest_gets_only(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("pc")
    acct, creds = owner(server, ns)
    built = tagged_image(tmp_path, "v1")
    push_ok(reg, built, f"{ns}/app:v1", creds, acct)
    repo = f"{ns}/app"
    h = {
        "Authorization": f"Bearer {_bearer(server, creds, repo)}",
        "Accept": "application/vnd.oci.image.manifest.v1+json",
    }
    with httpx.Client(base_url=f"https://{reg.host}", verify=tls(server)) as c:
        assert c.head(f"/v2/{repo}/manifests/v1", headers=h).status_code == 200
        assert c.get(f"/v2/{repo}/blobs/{built.config_digest}", headers=h).status_code == 200
        assert c.head(f"/v2/{repo}/manifests/v1", headers=h).status_code == 200
        assert c.get(f"/v2/{repo}/manifests/v1", headers=h).status_code == 200

    def count() -> int:
        return int(call_ok(server, acct, "GetRepositoryInfo", reponame=repo)["pullCount"])

    # Notifications arrive in order: once the GET is counted, the HEADs and blob were seen.
    wait_for(lambda: count() >= 1, what="the pull to be counted")
    assert count() == 1
    assert inspect_raw(reg, f"{repo}:v1", creds).returncode == 0
    wait_for(lambda: count() >= 2, what="the second pull")
    assert count() == 2


def test_duplicate_image_makes_a_pullable_tag(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("du")
    acct, creds = owner(server, ns)
    built = tagged_image(tmp_path, "v1")
    push_ok(reg, built, f"{ns}/foo:v1", creds, acct)
    call_ok(server, acct, "DuplicateImage", src_image=f"{ns}/foo:v1", dest_image=f"{ns}/foo:latest")
    call_ok(server, acct, "DuplicateImage", src_image=f"{ns}/foo:v1", dest_image=f"{ns}/bar:copy")
    for image in (f"{ns}/foo:latest", f"{ns}/bar:copy"):
        r = inspect_raw(reg, image, creds)
        assert r.returncode == 0, r.stderr
        assert "sha256:" + hashlib.sha256(r.stdout.encode()).hexdigest() == built.manifest_digest
    assert tags(server, acct, f"{ns}/bar")["copy"]["tagId"] == built.manifest_digest
    # The source must exist and the destination be the caller's.
    res = server.client(acct).call(
        "DuplicateImage", {"src_image": f"{ns}/foo:nope", "dest_image": f"{ns}/foo:x"}
    )
    assert res["code"] == 5000
    other = server.new_account()
    res = server.client(other).call(
        "DuplicateImage", {"src_image": f"{ns}/foo:v1", "dest_image": f"{ns}/foo:stolen"}
    )
    assert res["code"] == 5000
    # The copy runs outside the request's transaction; when it fails (the registry lost the
    # source's manifest), the new repository it was for is not made.
    v2 = server.data_dir / "registry" / "storage" / "docker" / "registry" / "v2"
    shutil.rmtree(v2 / "repositories" / ns / "foo")
    res = server.client(acct).call(
        "DuplicateImage", {"src_image": f"{ns}/foo:v1", "dest_image": f"{ns}/fresh:x"}
    )
    assert res["code"] != 0 and "Image" in res["message"], res
    assert call_ok(server, acct, "RepositoryIsExists", reponame=f"{ns}/fresh")["isExist"] is False


def test_deleted_tag_is_unpullable_and_gc_frees_its_bytes(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("gc")
    acct, creds = owner(server, ns)
    keep = tagged_image(tmp_path, "keep")
    push_ok(reg, keep, f"{ns}/app:keep", creds, acct)
    size = 6 << 20
    big = random_image(tmp_path / "big", "big", size)
    push_ok(reg, big, f"{ns}/app:big", creds, acct)
    push_ok(reg, big, f"{ns}/app:big2", creds)  # same digest, second tag
    wait_tags(server, acct, f"{ns}/app", {"keep", "big", "big2"})
    call_ok(server, acct, "BatchDeleteTag", reponame=f"{ns}/app", tags=["big"])
    # The other tag of the same image stays.
    assert inspect_raw(reg, f"{ns}/app:big2", creds).returncode == 0
    call_ok(server, acct, "BatchDeleteTag", reponame=f"{ns}/app", tags=["big2"])
    r = inspect_raw(reg, f"{ns}/app:big", creds)
    assert r.returncode != 0 and "manifest unknown" in r.stderr.lower()
    assert set(tags(server, acct, f"{ns}/app")) == {"keep"}
    blobs = server.data_dir / "registry" / "storage" / "docker" / "registry" / "v2" / "blobs"
    layer = blobs / "sha256" / big.manifest_digest[7:9]
    assert layer.exists()
    freed = call_ok(server, acct, "OpenccsRegistryMaintain", gc="true")["bytesFreed"]
    assert freed >= size
    assert not (blobs / "sha256" / big.manifest_digest[7:9] / big.manifest_digest[7:]).exists()
    # What was kept still pulls, and pushing works again after the collection.
    assert pull(reg, f"{ns}/app:keep", creds, tmp_path / "p").returncode == 0
    push_ok(reg, tagged_image(tmp_path, "after"), f"{ns}/app:after", creds, acct)
    wait_tags(server, acct, f"{ns}/app", {"keep", "after"})


def test_batch_delete_repository_removes_its_images(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("br")
    acct, creds = owner(server, ns)
    push_ok(reg, tagged_image(tmp_path, "v1"), f"{ns}/gone:v1", creds, acct)
    wait_tags(server, acct, f"{ns}/gone", {"v1"})
    call_ok(server, acct, "BatchDeleteRepository", reponames=[f"{ns}/gone"])
    assert inspect_raw(reg, f"{ns}/gone:v1", creds).returncode != 0
    assert call_ok(server, acct, "RepositoryIsExists", reponame=f"{ns}/gone")["isExist"] is False
    # The namespace is empty again and can be deleted.
    call_ok(server, acct, "DeleteUserNamespace", namespace=ns)


def test_keep_last_nums_leaves_the_newest(server: Server, reg: Registry, tmp_path: Path) -> None:
    ns = unique("kl")
    acct, creds = owner(server, ns)
    names = [f"t{i}" for i in range(5)]
    for name in names:
        push_ok(reg, tagged_image(tmp_path, name), f"{ns}/app:{name}", creds, acct)
    wait_tags(server, acct, f"{ns}/app", set(names))
    call_ok(server, acct, "SetAutoDelStrategy", reponame=f"{ns}/app", type="keep_last_nums", val=3)
    call_ok(server, acct, "OpenccsRegistryMaintain")
    assert set(tags(server, acct, f"{ns}/app")) == {"t2", "t3", "t4"}
    assert inspect_raw(reg, f"{ns}/app:t1", creds).returncode != 0
    assert inspect_raw(reg, f"{ns}/app:t4", creds).returncode == 0


def test_tag_quota_refuses_pushes_unless_retention_makes_room(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("tq")
    acct, creds = owner(server, ns)
    server.cli("account", "quota", acct.uin, "ccrTagsPerRepository", "3")
    for name in ("a", "b", "c"):
        push_ok(reg, tagged_image(tmp_path, name), f"{ns}/full:{name}", creds, acct)
    wait_tags(server, acct, f"{ns}/full", {"a", "b", "c"})
    assert denied(push(reg, tagged_image(tmp_path, "d"), f"{ns}/full:d", creds))
    res = server.client(acct).call(
        "DuplicateImage", {"src_image": f"{ns}/full:a", "dest_image": f"{ns}/full:e"}
    )
    assert res["code"] == 4400 and "ccrTagsPerRepository" in res["message"]
    # With a strategy, a push reaching the quota cleans up to it.
    call_ok(server, acct, "SetAutoDelStrategy", reponame=f"{ns}/full", type="keep_last_nums", val=2)
    push_ok(reg, tagged_image(tmp_path, "d"), f"{ns}/full:d", creds, acct)
    wait_tags(server, acct, f"{ns}/full", {"c", "d"})


def test_trigger_fires_on_matching_pushes_only(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("tr")
    acct, creds = owner(server, ns)
    call_ok(server, acct, "CreateRepository", reponame=f"{ns}/svc", public=0)
    call_ok(
        server, acct, "AddUpdateServiceTrigger",
        triggerName="on-v", reponame=f"{ns}/svc", invokeMethod="regex", invokeExpr="^v",
        serviceName="web", clusterId="cls-abcd1234", namespace="default",
        containerName="web", clusterRegion=1,
    )  # fmt: skip
    push_ok(reg, tagged_image(tmp_path, "test1"), f"{ns}/svc:test1", creds, acct)
    push_ok(reg, tagged_image(tmp_path, "v2"), f"{ns}/svc:v2", creds, acct)
    wait_tags(server, acct, f"{ns}/svc", {"test1", "v2"})

    def logs() -> list[dict]:
        return call_ok(server, acct, "ListTriggerLog", reponame=f"{ns}/svc")["logInfo"]

    entries = wait_for(logs, what="a trigger log entry")
    assert len(entries) == 1
    e = entries[0]
    assert e["tagName"] == "v2" and e["triggerName"] == "on-v" and e["repoName"] == f"{ns}/svc"
    assert e["invokeCondition"] == {"invokeMethod": "regex", "invokeExpr": "^v"}
    assert e["invokePara"]["clusterId"] == "cls-abcd1234"
    assert e["invokePara"]["appId"] == str(acct.app_id)
    # No cluster exists yet: the firing is recorded as failed, saying why.
    assert e["invokeResult"]["returnCode"] != 0
    assert "does not exist" in e["invokeResult"]["returnMsg"]


def test_a_push_to_a_missing_namespace_says_which_and_how_to_create_it(
    server: Server, reg: Registry, tmp_path: Path
) -> None:
    ns = unique("mi")
    acct, creds = owner(server, ns)
    gone = unique("nx")
    r = push(reg, tagged_image(tmp_path, "v1"), f"{gone}/app:v1", creds)
    assert r.returncode != 0
    assert f"registry namespace '{gone}' does not exist" in r.stderr, r.stderr
    assert f"CreateCCRNamespace namespace={gone}" in r.stderr
    call_ok(server, acct, "CreateCCRNamespace", namespace=gone)
    push_ok(reg, tagged_image(tmp_path, "v1"), f"{gone}/app:v1", creds, acct)
    # The push is counted in /metrics (push_ok waited for its notification).
    token = json.loads(server.cli("metrics-token", "create").stdout)
    try:
        text = httpx.get(f"{server.http_url}/metrics",
                         headers={"Authorization": f"Bearer {token['token']}"}).text  # fmt: skip
    finally:
        server.cli("metrics-token", "revoke", token["id"])
    pushes = [ln for ln in text.splitlines()
              if ln.startswith('openccs_registry_events_total{action="push"}')]  # fmt: skip
    assert pushes and float(pushes[0].split()[-1]) >= 1
