"""The registry's actions without images: validation, namespaces, repositories, quotas,
favourites, triggers and retention settings, as the document describes them."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from openccs.registry.triggers import matches

from .conftest import Account, Server
from .test_registry_lib import call_ok


def name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def setup_repo(server: Server, public: int = 0) -> tuple[Account, str, str]:
    acct = server.new_account()
    ns = name("ns")
    call_ok(server, acct, "CreateCCRNamespace", namespace=ns)
    repo = f"{ns}/app"
    call_ok(server, acct, "CreateRepository", reponame=repo, public=public, description="d")
    return acct, ns, repo


TRIGGER = {
    "triggerName": "t1",
    "invokeMethod": "taglist",
    "invokeExpr": "v1;v2",
    "serviceName": "nginx-test",
    "clusterId": "cls-abcd1234",
    "namespace": "default",
    "containerName": "nginx-test",
    "clusterRegion": 1,
}

# (action, parameters, the parameter the 4000 must name); REPO stands for an own repository.
BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("RegisterRepositoryAccountNew", {"password": "short"}, "password"),
    ("RegisterRepositoryAccountNew", {}, "password"),
    ("ChangePassword", {"password": "x" * 17}, "password"),
    ("CreateCCRNamespace", {"namespace": "Bad_Upper"}, "namespace"),
    ("CreateCCRNamespace", {}, "namespace"),
    ("GetNamespaceInfo", {"limit": "0"}, "limit"),
    ("GetNamespaceInfo", {"offset": "-1"}, "offset"),
    ("NamespaceIsExists", {}, "namespace"),
    ("DeleteUserNamespace", {}, "namespace"),
    ("CreateRepository", {"reponame": "REPO", "public": "2"}, "public"),
    ("CreateRepository", {"reponame": "noslash", "public": "1"}, "reponame"),
    ("CreateRepository", {"reponame": "a/b"}, "public"),
    ("BatchDeleteRepository", {}, "reponames"),
    ("BatchDeleteRepository", {"reponames": ["REPO", "x/Y!"]}, "reponames.1"),
    ("GetRepositoryInfo", {"reponame": "bad name/x"}, "reponame"),
    ("RepositoryIsExists", {}, "reponame"),
    ("GetRepositoryList", {"orderby": "size"}, "orderby"),
    ("GetRepositoryList", {"order": "up"}, "order"),
    ("GetRepositoryList", {"limit": "101"}, "limit"),
    ("SearchUserRepository", {"public": "yes"}, "public"),
    ("UpdateRepositoryDesc", {"reponame": "REPO"}, "description"),
    ("UpdateRepositoryPublic", {"reponame": "REPO", "public": "x"}, "public"),
    ("GetTagList", {"reponame": "REPO", "limit": "1000"}, "limit"),
    ("BatchDeleteTag", {"reponame": "REPO", "tags": ["bad tag"]}, "tags.0"),
    ("BatchDeleteTag", {"reponame": "REPO"}, "tags"),
    ("DuplicateImage", {"src_image": "REPO", "dest_image": "REPO:v2"}, "src_image"),
    ("DuplicateImage", {"src_image": "REPO:v1"}, "dest_image"),
    ("SetAutoDelStrategy", {"reponame": "REPO", "type": "keep_all", "val": "3"}, "type"),
    ("SetAutoDelStrategy", {"reponame": "REPO", "type": "keep_last_nums", "val": "0"}, "val"),
    ("GetAutoDelStrategy", {}, "reponame"),
    ("CloseAutoDelStrategy", {}, "reponame"),
    (
        "AddUpdateServiceTrigger",
        {**TRIGGER, "reponame": "REPO", "invokeMethod": "x"},
        "invokeMethod",
    ),
    ("AddUpdateServiceTrigger", {**TRIGGER, "reponame": "REPO", "invokeExpr": ""}, "invokeExpr"),
    (
        "AddUpdateServiceTrigger",
        {**TRIGGER, "reponame": "REPO", "invokeMethod": "regex", "invokeExpr": "(["},
        "invokeExpr",
    ),
    ("AddUpdateServiceTrigger", {**TRIGGER, "reponame": "REPO", "clusterId": "c-1"}, "clusterId"),
    (
        "AddUpdateServiceTrigger",
        {**TRIGGER, "reponame": "REPO", "clusterRegion": "99"},
        "clusterRegion",
    ),
    (
        "AddUpdateServiceTrigger",
        {**TRIGGER, "reponame": "REPO", "serviceName": "Bad"},
        "serviceName",
    ),
    ("AddUpdateServiceTrigger", {k: v for k, v in TRIGGER.items()}, "reponame"),
    ("ModifyUpdateServiceTrigger", {"triggerName": "t1", "invokeMethod": "nope"}, "invokeMethod"),
    ("ModifyUpdateServiceTrigger", {}, "triggerName"),
    ("DeleteUpdateServiceTrigger", {}, "triggerName"),
    ("ListTrigger", {"limit": "abc"}, "limit"),
    ("ListTriggerLog", {"reponame": "REPO", "orderby": "size"}, "orderby"),
    ("ListTriggerLog", {}, "reponame"),
    ("AddFavor", {"reponame": "REPO", "repotype": "GITHUB"}, "repotype"),
    ("DeleteFavor", {"reponame": "REPO"}, "repotype"),
    ("GetFavor", {"limit": "-3"}, "limit"),
    ("BatchDeleteFavor", {"favors": [{"reponame": "a/b", "repotype": "X"}]}, "favors.0.repotype"),
    ("BatchDeleteFavor", {}, "favors"),
]


@pytest.fixture(scope="module")
def shared_repo(server: Server) -> tuple[Account, str, str]:
    return setup_repo(server)


@pytest.mark.parametrize(("action", "params", "param"), BAD_INPUT, ids=lambda v: str(v)[:40])
def test_bad_input_is_4000_naming_the_parameter_and_changes_nothing(
    server: Server,
    shared_repo: tuple[Account, str, str],
    action: str,
    params: dict[str, Any],
    param: str,
) -> None:
    acct, _ns, repo = shared_repo

    def fill(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("REPO", repo)
        if isinstance(v, list):
            return [fill(x) for x in v]
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v

    before = call_ok(server, acct, "SearchUserRepository")
    res = server.client(acct).call(action, fill(params))
    assert res["code"] == 4000, res
    assert param in res["message"], res
    assert call_ok(server, acct, "SearchUserRepository") == before
    assert call_ok(server, acct, "GetNamespaceInfo")["namespaceCount"] == 1
    assert call_ok(server, acct, "ListTrigger")["totalCount"] == 0


def test_namespaces_are_unique_across_accounts_and_reserved_names_refused(
    server: Server,
) -> None:
    a, b = server.new_account(), server.new_account()
    ns = name("uq")
    assert call_ok(server, a, "NamespaceIsExists", namespace=ns) == {
        "isExist": False,
        "isPreserved": False,
    }
    call_ok(server, a, "CreateCCRNamespace", namespace=ns)
    assert call_ok(server, b, "NamespaceIsExists", namespace=ns)["isExist"] is True
    res = server.client(b).call("CreateCCRNamespace", {"namespace": ns})
    assert res["code"] == 5100 and "already exists" in res["message"]
    assert call_ok(server, a, "NamespaceIsExists", namespace="library")["isPreserved"] is True
    assert server.client(a).call("CreateCCRNamespace", {"namespace": "library"})["code"] == 5100
    # b cannot delete it, nor create repositories in it.
    assert server.client(b).call("DeleteUserNamespace", {"namespace": ns})["code"] == 5000
    res = server.client(b).call("CreateRepository", {"reponame": f"{ns}/x", "public": 1})
    assert res["code"] == 5000


def test_namespace_info_searches_pages_and_counts_repositories(server: Server) -> None:
    acct = server.new_account()
    base = name("pg")
    for suffix in ("alpha", "beta", "gamma"):
        call_ok(server, acct, "CreateCCRNamespace", namespace=f"{base}{suffix}")
    call_ok(server, acct, "CreateRepository", reponame=f"{base}beta/r1", public=0)
    call_ok(server, acct, "CreateRepository", reponame=f"{base}beta/r2", public=1)
    data = call_ok(server, acct, "GetNamespaceInfo", namespace="bet")
    assert data["namespaceCount"] == 1
    info = data["namespaceInfo"][0]
    assert info["namespace"] == f"{base}beta" and info["repoCount"] == 2
    assert len(info["creationTime"]) == 19
    page = call_ok(server, acct, "GetNamespaceInfo", offset=1, limit=1)
    assert page["namespaceCount"] == 3 and [n["namespace"] for n in page["namespaceInfo"]] == [
        f"{base}beta"
    ]
    res = server.client(acct).call("DeleteUserNamespace", {"namespace": f"{base}beta"})
    assert res["code"] == 5100 and "2 repositories" in res["message"]
    call_ok(server, acct, "DeleteUserNamespace", namespace=f"{base}alpha")
    assert call_ok(server, acct, "GetNamespaceInfo")["namespaceCount"] == 2


def test_quotas_refuse_the_11th_namespace_and_the_101st_repository(server: Server) -> None:
    acct = server.new_account()
    limits = call_ok(server, acct, "GetLimit")["limitInfo"]
    assert [(x["type"], x["value"], x["username"]) for x in limits] == [
        ("namespace", 10, acct.uin),
        ("repo", 100, acct.uin),
        ("tag", 100, acct.uin),
        ("triggers", 10, acct.uin),
    ]
    base = name("q")
    for i in range(10):
        call_ok(server, acct, "CreateCCRNamespace", namespace=f"{base}n{i}")
    res = server.client(acct).call("CreateCCRNamespace", {"namespace": f"{base}n10"})
    assert res["code"] == 4400 and "ccrNamespaces" in res["message"]
    for i in range(100):
        call_ok(server, acct, "CreateRepository", reponame=f"{base}n{i % 10}/r{i}", public=0)
    res = server.client(acct).call("CreateRepository", {"reponame": f"{base}n0/r100", "public": 0})
    assert res["code"] == 4400 and "ccrRepositories" in res["message"]
    assert call_ok(server, acct, "SearchUserRepository", limit=100)["totalCount"] == 100


def test_repository_info_lists_and_search(server: Server) -> None:
    acct, ns, repo = setup_repo(server, public=0)
    info = call_ok(server, acct, "GetRepositoryInfo", reponame=repo)
    assert info["reponame"] == repo and info["public"] == 0 and info["description"] == "d"
    assert info["reptype"] == "QCLOUD HUB" and info["pullCount"] == 0
    assert info["isQcloudOfficial"] is False and info["isUserFavor"] is False
    res = server.client(acct).call("CreateRepository", {"reponame": repo, "public": 0})
    assert res["code"] == 5100
    other = server.new_account()
    # Another's private repository does not exist for you.
    assert server.client(other).call("GetRepositoryInfo", {"reponame": repo})["code"] == 5000
    assert call_ok(server, other, "RepositoryIsExists", reponame=repo)["isExist"] is False
    public = call_ok(server, other, "GetRepositoryList", reponame=repo, limit=100)
    assert public["totalCount"] == 0
    call_ok(server, acct, "UpdateRepositoryPublic", reponame=repo, public=1)
    call_ok(server, acct, "UpdateRepositoryDesc", reponame=repo, description="new words")
    assert call_ok(server, other, "RepositoryIsExists", reponame=repo)["isExist"] is True
    listed = call_ok(server, other, "GetRepositoryList", reponame=repo)
    assert listed["totalCount"] == 1 and listed["privilegeFiltered"] is False
    item = listed["repoInfo"][0]
    assert item["description"] == "new words" and item["public"] == 1 and item["tagCount"] == 0
    res = server.client(other).call("UpdateRepositoryDesc", {"reponame": repo, "description": "x"})
    assert res["code"] == 5000
    call_ok(server, acct, "CreateRepository", reponame=f"{ns}/second", public=0)
    mine = call_ok(server, acct, "SearchUserRepository", namespace=ns, public="0")
    assert [r["reponame"] for r in mine["repoInfo"]] == [f"{ns}/second"]
    assert call_ok(server, acct, "SearchUserRepository", reponame=repo)["totalCount"] == 1


def test_official_namespaces_sort_first(server: Server) -> None:
    acct, ns, repo = setup_repo(server, public=1)
    server.cli("registry", "official", ns)
    assert call_ok(server, acct, "GetRepositoryInfo", reponame=repo)["isQcloudOfficial"] is True
    first = call_ok(server, acct, "GetRepositoryList", orderby="official", limit=1)
    assert first["repoInfo"][0]["isQcloudOfficial"] is True
    server.cli("registry", "unofficial", ns)
    assert call_ok(server, acct, "GetRepositoryInfo", reponame=repo)["isQcloudOfficial"] is False


def test_favourites(server: Server) -> None:
    owner, _ns, repo = setup_repo(server, public=1)
    fan = server.new_account()
    call_ok(server, fan, "AddFavor", reponame=repo, repotype="QCLOUD HUB")
    call_ok(server, fan, "AddFavor", reponame="library/nginx", repotype="DOCKER HUB")
    call_ok(server, owner, "AddFavor", reponame=repo, repotype="QCLOUD HUB")
    info = call_ok(server, fan, "GetRepositoryInfo", reponame=repo)
    assert info["favorCount"] == 2 and info["isUserFavor"] is True
    favs = call_ok(server, fan, "GetFavor")
    assert favs["totalCount"] == 2
    assert {(f["reponame"], f["repotype"]) for f in favs["repoInfo"]} == {
        (repo, "QCLOUD HUB"),
        ("library/nginx", "DOCKER HUB"),
    }
    res = server.client(fan).call("DeleteFavor", {"reponame": "x/y", "repotype": "QCLOUD HUB"})
    assert res["code"] == 5000
    call_ok(server, fan, "DeleteFavor", reponame=repo, repotype="QCLOUD HUB")
    assert call_ok(server, fan, "GetRepositoryInfo", reponame=repo)["favorCount"] == 1
    call_ok(
        server,
        fan,
        "BatchDeleteFavor",
        favors=[{"reponame": "library/nginx", "repotype": "DOCKER HUB", "regionId": 1}],
    )
    assert call_ok(server, fan, "GetFavor")["totalCount"] == 0
    # A private repository of another account cannot be favoured.
    _o, _n, private = setup_repo(server, public=0)
    res = server.client(fan).call("AddFavor", {"reponame": private, "repotype": "QCLOUD HUB"})
    assert res["code"] == 5000


def test_trigger_actions_and_quota(server: Server) -> None:
    acct, _ns, repo = setup_repo(server)
    call_ok(server, acct, "AddUpdateServiceTrigger", **TRIGGER, reponame=repo)
    res = server.client(acct).call("AddUpdateServiceTrigger", {**TRIGGER, "reponame": repo})
    assert res["code"] == 5100 and "already exists" in res["message"]
    listed = call_ok(server, acct, "ListTrigger", reponame=repo)
    assert listed["totalCount"] == 1
    t = listed["triggerInfo"][0]
    assert t["triggerName"] == "t1" and t["repoName"] == repo
    assert t["invokeSource"] == "IMAGE_PUSH" and t["invokeAction"] == "SERVICE_UPDATE"
    assert t["invokeCondition"] == {"invokeMethod": "taglist", "invokeExpr": "v1;v2"}
    assert t["invokePara"] == {
        "appId": str(acct.app_id),
        "clusterId": "cls-abcd1234",
        "namespace": "default",
        "serviceName": "nginx-test",
        "containerName": "nginx-test",
        "clusterRegion": 1,
    }
    call_ok(
        server, acct, "ModifyUpdateServiceTrigger",
        triggerName="t1", newTriggerName="t1new", invokeMethod="all", serviceName="other",
    )  # fmt: skip
    t = call_ok(server, acct, "ListTrigger", triggerName="t1new")["triggerInfo"][0]
    assert t["invokeCondition"] == {"invokeMethod": "all", "invokeExpr": ""}
    assert t["invokePara"]["serviceName"] == "other"
    assert call_ok(server, acct, "ListTrigger", triggerName="t1")["totalCount"] == 0
    other = server.new_account()
    assert (
        server.client(other).call("DeleteUpdateServiceTrigger", {"triggerName": "t1new"})["code"]
        == 5000
    )
    res = server.client(other).call("AddUpdateServiceTrigger", {**TRIGGER, "reponame": repo})
    assert res["code"] == 5000
    for i in range(2, 11):
        call_ok(
            server,
            acct,
            "AddUpdateServiceTrigger",
            **{**TRIGGER, "triggerName": f"t{i}"},
            reponame=repo,
        )
    res = server.client(acct).call(
        "AddUpdateServiceTrigger", {**TRIGGER, "triggerName": "t11", "reponame": repo}
    )
    assert res["code"] == 4400 and "ccrTriggers" in res["message"]
    call_ok(server, acct, "DeleteUpdateServiceTrigger", triggerName="t1new")
    assert call_ok(server, acct, "ListTrigger", limit=100)["totalCount"] == 9
    assert call_ok(server, acct, "ListTriggerLog", reponame=repo) == {
        "totalCount": 0,
        "logInfo": [],
    }


@pytest.mark.parametrize(
    ("method", "expr", "tag", "expected"),
    [
        ("all", "", "anything", True),
        ("taglist", "v1;v2", "v2", True),
        ("taglist", "v1;v2", "v3", False),
        ("taglist", "v1; v2", "v2", True),
        ("regex", "^v", "v2", True),
        ("regex", "^v", "test1", False),
        ("regex", "^test*", "tes", True),
    ],
)
def test_trigger_conditions(method: str, expr: str, tag: str, expected: bool) -> None:
    assert matches(method, expr, tag) is expected


def test_retention_strategy_set_get_close(server: Server) -> None:
    acct, _ns, repo = setup_repo(server)
    assert call_ok(server, acct, "GetAutoDelStrategy", reponame=repo) == {
        "totalCount": 0,
        "strategyInfo": [],
    }
    call_ok(server, acct, "SetAutoDelStrategy", reponame=repo, type="keep_last_days", val=7)
    call_ok(server, acct, "SetAutoDelStrategy", reponame=repo, type="keep_last_nums", val=10)
    data = call_ok(server, acct, "GetAutoDelStrategy", reponame=repo)
    assert data["totalCount"] == 1
    s = data["strategyInfo"][0]
    assert (s["username"], s["reponame"], s["type"], s["value"], s["valid"]) == (
        acct.uin, repo, "keep_last_nums", 10, 1,
    )  # fmt: skip
    assert s["creation_time"].endswith("+08:00") and "T" in s["creation_time"]
    call_ok(server, acct, "CloseAutoDelStrategy", reponame=repo)
    assert call_ok(server, acct, "GetAutoDelStrategy", reponame=repo)["totalCount"] == 0
    assert server.client(acct).call("CloseAutoDelStrategy", {"reponame": repo})["code"] == 5000


def test_registry_password_rules(server: Server) -> None:
    acct = server.new_account()
    res = server.client(acct).call("ChangePassword", {"password": "12345678"})
    assert res["code"] == 5000 and "RegisterRepositoryAccountNew" in res["message"]
    call_ok(server, acct, "RegisterRepositoryAccountNew", password="12345678")
    res = server.client(acct).call("RegisterRepositoryAccountNew", {"password": "12345678"})
    assert res["code"] == 5100 and "ChangePassword" in res["message"]
    call_ok(server, acct, "ChangePassword", password="1234567890123456")
