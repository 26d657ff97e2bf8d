"""The web console's security: sign-in by console password or key, sessions (cookie flags,
expiry, logout), CSRF on every form, the Content-Security-Policy, one account never reaching
another's clusters, a sub-account held to its allow-list, and user text shown as text."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By

from . import browser
from .conftest import Account, Server, unique_cluster_cidr
from .console_helpers import PASSWORD, Browser, error_in, set_password, token_in
from .test_cluster_input import account_with_vpc


def empty_cluster(server: Server, account: Account | None = None) -> str:
    c = server.client(account)
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    res = c.call(
        "CreateEmptyCluster",
        {"clusterName": "web", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc},
    )
    assert res["code"] == 0, res
    assert server.wait_task(res["data"]["requestId"], account)["status"] == "succ"
    return str(res["data"]["clusterId"])


def cluster_ids(server: Server, account: Account | None = None) -> set[str]:
    res = server.client(account).call("DescribeCluster", {"limit": 100})
    assert res["code"] == 0, res
    return {c["clusterId"] for c in res["data"]["clusters"]}


@pytest.fixture(scope="module")
def owner(server: Server) -> Account:
    """An account of the module's own, with a VPC and a console password."""
    account, _ = account_with_vpc(server)
    server.cli("account", "quota", account.uin, "clusters", "50")
    set_password(server, account.uin)
    return account


def test_wrong_password_and_unknown_account_are_refused(server: Server, owner: Account) -> None:
    b = Browser(server)
    for uin, password in ((owner.uin, "not-the-password"), ("999999999999", PASSWORD)):
        r = b.sign_in(uin=uin, password=password)
        assert r.status_code == 401
        assert "Wrong account or password" in error_in(r.text)
        assert "occ_session" not in r.headers.get("set-cookie", "")
    r = b.sign_in(secret_id=owner.secret_id, secret_key="x" * 32)
    assert r.status_code == 401
    assert b.get("/console/clusters").status_code == 303  # still signed out


def test_session_cookie_flags_and_logout(server: Server, owner: Account) -> None:
    b = Browser(server, https=True)
    r = b.sign_in(uin=owner.uin, password=PASSWORD)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "occ_session=" in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age=", "Path=/console"):
        assert flag.lower() in cookie.lower(), (flag, cookie)
    page = b.get("/console/")
    assert page.status_code == 200 and f"account {owner.uin}" in page.text
    r = b.http.post("/console/logout", data={"csrf": token_in(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    # The old cookie no longer opens anything, even if a browser kept it.
    b.http.cookies.set("occ_session", cookie.split(";")[0].split("=", 1)[1], path="/console")
    r = b.http.get("/console/")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_sign_in_with_secret_id_and_key(server: Server) -> None:
    account = server.new_account()
    b = Browser(server)
    assert b.sign_in_key(account).status_code == 303
    assert f"account {account.uin}" in b.get("/console/").text
    # Disabling the key ends the session signed in with it.
    server.cli("key", "disable", account.secret_id)
    r = b.get("/console/")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_every_form_needs_the_csrf_token(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    for form in ({}, {"csrf": "forged-token"}):
        r = b.http.post(f"/console/clusters/{cluster}/delete", data=form)
        assert r.status_code == 403 and "security token" in r.text
        r = b.http.post("/console/logout", data=form)
        assert r.status_code == 403
    assert cluster in cluster_ids(server, owner)
    # Nor does sign-in work without the login form's own token.
    r = b.http.post("/console/login", data={"uin": owner.uin, "password": PASSWORD})
    assert r.status_code == 403


def test_security_headers(server: Server, owner: Account) -> None:
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    for path in ("/console/login", "/console/", "/console/static/console.js"):
        r = b.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
    html = b.get("/console/").text
    assert "<script>" not in html and "onclick" not in html


def test_another_accounts_cluster_is_not_found(server: Server, owner: Account) -> None:
    theirs = empty_cluster(server)  # the default account's
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    for path in (f"/console/clusters/{theirs}", f"/console/clusters/{theirs}/services",
                 f"/console/clusters/{theirs}/kubeconfig"):  # fmt: skip
        r = b.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert theirs in error_in(r.text)
    r = b.post(f"/console/clusters/{theirs}/delete", {})
    assert r.status_code == 404
    assert theirs in cluster_ids(server)
    assert theirs not in b.get("/console/clusters").text


def test_sub_account_is_held_to_its_allow_list(server: Server, owner: Account) -> None:
    allowed, other = empty_cluster(server, owner), empty_cluster(server, owner)
    out = server.cli(
        "subuser", "create", owner.uin, "--action", "DescribeCluster",
        "--action", "DescribeClusterInstances", "--action", "DescribeClusterNameSpaces",
        "--resource", allowed, "--no-key",
    )  # fmt: skip
    sub = json.loads(out.stdout)["uin"]
    set_password(server, sub, subuser=True)
    b = Browser(server)
    b.sign_in_ok(sub)
    clusters = b.get("/console/clusters")
    assert allowed in clusters.text and other not in clusters.text
    assert b.get(f"/console/clusters/{allowed}").status_code == 200
    r = b.get(f"/console/clusters/{other}")
    assert r.status_code == 403 and other in error_in(r.text)
    # Deleting is not in its list: the API's 4103 message, and the cluster stays.
    r = b.post(f"/console/clusters/{allowed}/delete", {}, page=f"/console/clusters/{allowed}")
    assert r.status_code == 403 and "DeleteCluster" in error_in(r.text)
    assert {allowed, other} <= cluster_ids(server, owner)


@pytest.fixture(scope="module")
def short_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("console-ttl")
    srv = Server(data_dir=base / "data", db_url=None, extra_args=("--console-session-ttl", "2"))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.sweep()


def test_an_expired_session_signs_out(short_sessions: Server) -> None:
    set_password(short_sessions, short_sessions.default.uin)
    b = Browser(short_sessions)
    b.sign_in_ok(short_sessions.default.uin)
    page = b.get("/console/clusters")
    assert page.status_code == 200
    time.sleep(2.5)
    r = b.get("/console/clusters")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    # A form from before the expiry changes nothing either.
    r = b.http.post("/console/clusters", data={"csrf": token_in(page.text), "clusterName": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    assert cluster_ids(short_sessions) == set()


XSS = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


@pytest.mark.skipif(not browser.available(), reason="needs Debian's chromium and chromedriver")
def test_user_text_is_shown_as_text_never_run(
    server: Server, owner: Account, tmp_path: Path
) -> None:
    cluster = empty_cluster(server, owner)
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    r = b.post(
        f"/console/clusters/{cluster}/services",
        {"serviceName": "xss", "image": "openccs/busybox:latest", "replicas": "0",
         "envs": f"EVIL={XSS}", "serviceDesc": XSS, "ports": "80:80/TCP"},
        page=f"/console/clusters/{cluster}/new-service",
    )  # fmt: skip
    assert r.status_code == 303, error_in(r.text)
    # A service name carrying markup is refused with the API's message, shown escaped.
    r = b.post(
        f"/console/clusters/{cluster}/services",
        {"serviceName": "<script>x</script>", "image": "openccs/busybox:latest", "replicas": "1"},
        page=f"/console/clusters/{cluster}/new-service",
    )  # fmt: skip
    assert r.status_code == 400 and "serviceName" in error_in(r.text)
    assert "<script>x</script>" not in r.text and "&lt;script&gt;x&lt;/script&gt;" in r.text
    with browser.chromium() as d:
        browser.sign_in(d, server.http_url, owner.uin, PASSWORD)
        d.get(f"{server.http_url}/console/clusters/{cluster}/services/default/xss")
        env = d.find_element(By.CSS_SELECTOR, "code.env").text
        assert env == f"EVIL={XSS}"
        assert d.title != "pwned" and "pwned" not in d.title
        assert not d.find_elements(By.CSS_SELECTOR, "main script, main img")
        browser.screenshot(d, "escaped-text")


def test_pages_of_an_empty_cluster_render(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    for path in ("", "/services", "/new-service", "/more"):
        r = b.get(f"/console/clusters/{cluster}{path}")
        assert r.status_code == 200, (path, error_in(r.text))
        assert not error_in(r.text), path
    kubeconfig = b.get(f"/console/clusters/{cluster}/kubeconfig")
    assert kubeconfig.status_code == 200
    assert "attachment" in kubeconfig.headers["content-disposition"]
    config = yaml.safe_load(kubeconfig.text)
    security = server.client(owner).call("DescribeClusterSecurityInfo", {"clusterId": cluster})
    assert config["users"][0]["user"]["token"] == security["data"]["password"]
    assert config["current-context"] == cluster
    more = b.get(f"/console/clusters/{cluster}/more").text
    assert "Ingresses" in more and "Autoscaling groups" in more and "Log collection rules" in more
    for path in ("/console/", "/console/clusters", "/console/registry",
                 f"/console/monitoring?cluster={cluster}&range=week"):  # fmt: skip
        r = b.get(path)
        assert r.status_code == 200 and not error_in(r.text), (path, error_in(r.text))
    # The live refresh of a signed-out browser is told so (its script then goes to sign-in).
    r = Browser(server).http.get("/console/", headers={"X-Console-Live": "1"})
    assert r.status_code == 401


def test_a_list_of_more_than_500_pages(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    c = server.client(owner)
    for i in range(519):
        res = c.call("CreateClusterNamespace", {"clusterId": cluster, "name": f"ns-{i:03d}",
                                                "description": ""})  # fmt: skip
        assert res["code"] == 0, res
    # The last one through the console's own form.
    b_form = Browser(server)
    b_form.sign_in_ok(owner.uin)
    r = b_form.post(f"/console/clusters/{cluster}/namespaces", {"namespace": "ns-519"},
                    page=f"/console/clusters/{cluster}")  # fmt: skip
    assert r.status_code == 303, error_in(r.text)
    api = c.call("DescribeClusterNameSpaces", {"clusterId": cluster})["data"]["namespaces"]
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    seen: list[str] = []
    page = 1
    while True:
        html = b.get(f"/console/clusters/{cluster}?nspage={page}").text
        shown = re.findall(r'data-namespace="([^"]+)"', html)
        assert 0 < len(shown) <= 100
        seen += shown
        if 'rel="next"' not in html.split('data-pager="nspage"')[1].split("</nav>")[0]:
            break
        page += 1
    assert len(api) > 520 and page == -(-len(api) // 100) and f"{len(api)} items" in html
    assert seen == [n["name"] for n in api]


def test_failed_tasks_on_the_overview_and_who_sees_them(server: Server, owner: Account) -> None:
    mine, other = empty_cluster(server, owner), empty_cluster(server, owner)
    c = server.client(owner)
    ids = {}
    for cluster in (mine, other):
        res = c.call("OpenccsRunTestTask", {"failAt": 1, "stepSeconds": 0, "clusterId": cluster})
        assert res["code"] == 0, res
        ids[cluster] = res["data"]["requestId"]
        assert server.wait_task(ids[cluster], owner)["status"] == "fail"
    listed = c.call("OpenccsDescribeTasks", {"status": "fail", "limit": 100})["data"]
    assert {ids[mine], ids[other]} <= {t["requestId"] for t in listed["tasks"]}
    row = next(t for t in listed["tasks"] if t["requestId"] == ids[mine])
    assert row["resourceId"] == mine and "step 1 failed" in row["reason"]
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    html = b.get("/console/").text
    shown = re.findall(r'<tr data-task="(\d+)"', html)
    assert str(ids[mine]) in shown and str(ids[other]) in shown
    assert "step 1 failed as the test asked" in html
    # Another account sees none of them; a sub-account those of its clusters only.
    assert server.client().call("OpenccsDescribeTasks", {"limit": 100})["code"] == 0
    theirs = server.client().call("OpenccsDescribeTasks", {"limit": 100})["data"]["tasks"]
    assert not {ids[mine], ids[other]} & {t["requestId"] for t in theirs}
    out = server.cli("subuser", "create", owner.uin, "--action", "*", "--resource", mine,
                     "--no-key")  # fmt: skip
    sub = json.loads(out.stdout)["uin"]
    set_password(server, sub, subuser=True)
    bs = Browser(server)
    bs.sign_in_ok(sub)
    shown = re.findall(r'<tr data-task="(\d+)"', bs.get("/console/").text)
    assert str(ids[mine]) in shown and str(ids[other]) not in shown


def test_log_collection_rules_from_the_form(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    more = f"/console/clusters/{cluster}/more"
    form = {"name": "app-logs", "description": "<b>all</b>", "inputType": "container-log",
            "namespaces": "default", "outputType": "kafka", "host": "kafka.example",
            "port": "9092", "topic": "app"}  # fmt: skip
    r = b.post(f"{more}/log", form, page=more)
    assert r.status_code == 303, error_in(r.text)
    api = server.client(owner).call("ListLogCollector", {"clusterId": cluster})["data"]
    (rule,) = api["logCollectorList"]
    assert rule["name"] == "app-logs" and rule["outputOption"]["topic"] == "app"
    assert rule["inputOption"]["namespaces"][0]["namespace"] == "default"
    html = b.get(more).text
    assert 'data-rule="app-logs"' in html and "&lt;b&gt;all&lt;/b&gt;" in html
    # The API's refusal, with its message, and the form kept as typed.
    r = b.post(f"{more}/log", {**form, "port": "99999"}, page=more)
    assert r.status_code == 400 and "outputOption.port" in error_in(r.text)
    assert 'value="kafka.example"' in r.text
    r = b.post(f"{more}/log", form, page=more)
    assert r.status_code == 400 and "already exists" in error_in(r.text)
    # A sub-account allowed every action on another cluster only: refused, nothing changed.
    elsewhere = empty_cluster(server, owner)
    out = server.cli("subuser", "create", owner.uin, "--action", "*", "--resource", elsewhere,
                     "--no-key")  # fmt: skip
    sub = json.loads(out.stdout)["uin"]
    set_password(server, sub, subuser=True)
    bs = Browser(server)
    bs.sign_in_ok(sub)
    r = bs.post(f"{more}/log-delete", {"name": "app-logs"})
    assert r.status_code == 403 and cluster in error_in(r.text)
    r = bs.post(f"{more}/log", {**form, "name": "sneaky"})
    assert r.status_code == 403
    r = b.post(f"{more}/log-delete", {"name": "app-logs"}, page=more)
    assert r.status_code == 303, error_in(r.text)
    api = server.client(owner).call("ListLogCollector", {"clusterId": cluster})["data"]
    assert api["logCollectorList"] == []


def test_ingress_with_its_rules_from_the_form(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    c = server.client(owner)
    for name in ("web", "api"):
        res = c.call("CreateClusterService", {
            "clusterId": cluster, "serviceName": name, "replicas": 0,
            "portMappings": [{"lbPort": 80, "containerPort": 80, "protocol": "TCP"}],
            "containers": [{"containerName": "main", "image": "openccs/busybox:latest"}],
        })  # fmt: skip
        assert res["code"] == 0, res
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    more = f"/console/clusters/{cluster}/more"
    r = b.post(f"{more}/ingress", {"ingressName": "front", "namespace": "default",
                                   "rules": "http shop.example / web:80\n"
                                            "http shop.example /api api:80 80"},
               page=more)  # fmt: skip
    assert r.status_code == 303, error_in(r.text)

    def rules() -> list[tuple[str, str, str, int]]:
        found = c.call("DescribeIngress", {"clusterId": cluster})["data"]["ingressList"]
        return [(x["domain"], x["url"], x["serviceName"], int(x["servicePort"]))
                for x in found[0]["rules"]]  # fmt: skip

    assert rules() == [("shop.example", "/", "web", 80), ("shop.example", "/api", "api", 80)]
    html = b.get(more).text
    assert 'data-ingress="default/front"' in html and "http://shop.example/api" in html
    # The service's page links the routes that lead to it.
    routes = b.get(f"/console/clusters/{cluster}/services/default/api").text
    assert 'href="http://shop.example/api"' in routes and "ingress front" in routes
    assert 'href="http://shop.example/"' not in routes
    # A rule to a service that is not there: the API's message.
    r = b.post(f"{more}/ingress-rules", {"ingressName": "front", "namespace": "default",
                                         "rules": "http shop.example / nothing:80"},
               page=more)  # fmt: skip
    assert r.status_code == 400 and "no service nothing" in error_in(r.text)
    r = b.post(f"{more}/ingress-rules", {"ingressName": "front", "rules": "http a.example"},
               page=more)  # fmt: skip
    assert r.status_code == 400 and "PROTOCOL DOMAIN PATH" in error_in(r.text)
    r = b.post(f"{more}/ingress-rules", {"ingressName": "front", "namespace": "default",
                                         "rules": "http other.example /v2 api:80"},
               page=more)  # fmt: skip
    assert r.status_code == 303, error_in(r.text)
    assert rules() == [("other.example", "/v2", "api", 80)]
    r = b.post(f"{more}/ingress-delete", {"ingressName": "front", "namespace": "default"},
               page=more)  # fmt: skip
    assert r.status_code == 303, error_in(r.text)
    assert c.call("DescribeIngress", {"clusterId": cluster})["data"]["ingressList"] == []


def test_registry_tags_retention_and_triggers(
    server: Server, owner: Account, tmp_path: Path
) -> None:
    from .test_registry_lib import call_ok, login, push_ok, registry_of, tagged_image

    cluster = empty_cluster(server, owner)
    creds = login(server, owner)
    ns = f"web{owner.uin[-6:]}"
    call_ok(server, owner, "CreateCCRNamespace", namespace=ns)
    reg = registry_of(server)
    for tag in ("v1", "v2", "v3"):
        push_ok(reg, tagged_image(tmp_path, tag), f"{ns}/site:{tag}", creds, owner)
    repo = f"{ns}/site"
    page = f"/console/registry/repository?name={repo}"
    b = Browser(server)
    b.sign_in_ok(owner.uin)
    html = b.get(page).text
    assert set(re.findall(r'data-tag="([^"]+)"', html)) == {"v1", "v2", "v3"}
    # Tick two tags and delete them.
    form = {"csrf": token_in(html), "reponame": repo, "tags": ["v1", "v2"]}
    r = b.http.post("/console/registry/tags-delete", data=form)
    assert r.status_code == 303, error_in(r.text)
    tags = call_ok(server, owner, "GetTagList", reponame=repo)["tagInfo"]
    assert [t["tagName"] for t in tags] == ["v3"]
    # Retention: set, shown, closed.
    r = b.post("/console/registry/retention", {"reponame": repo, "type": "keep_last_nums",
                                               "val": "5"}, page=page)  # fmt: skip
    assert r.status_code == 303, error_in(r.text)
    got = call_ok(server, owner, "GetAutoDelStrategy", reponame=repo)["strategyInfo"]
    assert [(s["type"], s["value"]) for s in got] == [("keep_last_nums", 5)]
    assert "Keep the last 5 tags" in b.get(page).text
    r = b.post("/console/registry/retention", {"reponame": repo, "type": "keep_last_nums",
                                               "val": "0"}, page=page)  # fmt: skip
    assert r.status_code == 400 and "val" in error_in(r.text)
    r = b.post("/console/registry/retention-close", {"reponame": repo}, page=page)
    assert r.status_code == 303, error_in(r.text)
    assert call_ok(server, owner, "GetAutoDelStrategy", reponame=repo)["strategyInfo"] == []
    # A trigger on the repository, to a service of the account's cluster.
    trigger = {"reponame": repo, "triggerName": "deploy-site", "invokeMethod": "taglist",
               "invokeExpr": "v4;v5", "clusterId": cluster, "namespace": "default",
               "serviceName": "site", "containerName": "main", "clusterRegion": "1"}  # fmt: skip
    r = b.post("/console/registry/trigger", trigger, page=page)
    assert r.status_code == 303, error_in(r.text)
    listed = call_ok(server, owner, "ListTrigger", reponame=repo)["triggerInfo"]
    assert [t["triggerName"] for t in listed] == ["deploy-site"]
    assert listed[0]["invokePara"]["clusterId"] == cluster
    html = b.get(page).text
    assert 'data-trigger="deploy-site"' in html and "v4;v5" in html
    r = b.post("/console/registry/trigger", {**trigger, "invokeMethod": "sometimes"}, page=page)
    assert r.status_code == 400 and "invokeMethod" in error_in(r.text)
    gone = {"reponame": repo, "triggerName": "deploy-site"}
    r = b.post("/console/registry/trigger-delete", gone, page=page)
    assert r.status_code == 303, error_in(r.text)
    assert call_ok(server, owner, "ListTrigger", reponame=repo)["triggerInfo"] == []


def test_previous_log_action_refuses_what_is_not_there(server: Server, owner: Account) -> None:
    cluster = empty_cluster(server, owner)
    c = server.client(owner)
    res = c.call("CreateClusterService", {
        "clusterId": cluster, "serviceName": "quiet", "replicas": 0, "accessType": "None",
        "containers": [{"containerName": "main", "image": "openccs/busybox:latest"}],
    })  # fmt: skip
    assert res["code"] == 0, res
    ref = {"clusterId": cluster, "serviceName": "quiet", "namespace": "default"}
    res = c.call("OpenccsDescribeInstancePreviousLog", {**ref, "podName": "quiet-nothere"})
    assert res["codeDesc"] == "ResourceNotFound" and "quiet-nothere" in res["message"], res
    res = c.call("OpenccsDescribeInstancePreviousLog", {**ref, "podName": "x",
                                                        "containerName": "other"})  # fmt: skip
    assert res["codeDesc"] == "ResourceNotFound" and "other" in res["message"], res
    # Another account's cluster is not found either.
    res = server.client().call("OpenccsDescribeInstancePreviousLog", {**ref, "podName": "x"})
    assert res["code"] != 0 and cluster in res["message"], res
