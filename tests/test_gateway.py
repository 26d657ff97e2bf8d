"""The gateway against a running server: envelopes, authentication, replay, tenancy."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import Server

MISSING = 10**9  # a requestId no test creates


def run_task(server: Server, account=None, **params: str) -> int:
    res = server.client(account).call("OpenccsRunTestTask", params)
    assert res["code"] == 0, res
    return int(res["data"]["requestId"])


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("sig", ["HmacSHA1", "HmacSHA256"])
def test_signed_call_succeeds_with_the_flat_envelope(server: Server, method: str, sig: str) -> None:
    request_id = run_task(server, stepSeconds="0")
    params = server.signed(
        "DescribeClusterTaskResult",
        {"requestId": request_id},
        method=method,
        signature_method=sig,
    )
    res = server.raw(params, method=method)
    assert res["code"] == 0 and res["codeDesc"] == "Success" and res["message"] == ""
    assert res["data"]["status"] in ("running", "succ")


def test_every_response_carries_a_request_id_header(server: Server) -> None:
    r = httpx.post(f"{server.http_url}/v2/index.php", data={"Action": "x"})
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 36


def test_wrong_signature_is_4100(server: Server) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    params["requestId"] = "2"  # changed after signing
    assert server.raw(params)["code"] == 4100


def test_signature_over_another_host_is_4100(server: Server) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    assert server.raw(params, host="ccs.api.qcloud.com")["code"] == 4100


def test_signature_with_the_sent_api_host_name_is_accepted(server: Server) -> None:
    a = server.default
    from openccs.client import signed_params

    params = signed_params(
        "DescribeClusterTaskResult",
        {"requestId": MISSING},
        a.secret_id,
        a.secret_key,
        "ccs.api.qcloud.com",
    )
    res = server.raw(params, host="ccs.api.qcloud.com")
    assert res["code"] == 5000  # authenticated; the task does not exist


def test_unknown_secret_id_is_4104(server: Server) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    params["SecretId"] = "AKIDnotakey"
    res = server.raw(params)
    assert res["code"] == 4104 and "AKIDnotakey" in res["message"]


def test_disabled_then_deleted_key_is_4104(server: Server) -> None:
    acct = server.new_account()
    c = server.client(acct)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 5000
    server.cli("key", "disable", acct.secret_id)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 4104
    server.cli("key", "enable", acct.secret_id)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 5000
    server.cli("key", "delete", acct.secret_id)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 4104


def test_disabled_account_is_refused(server: Server) -> None:
    acct = server.new_account()
    server.cli("account", "disable", acct.uin)
    assert (
        server.client(acct).call("DescribeClusterTaskResult", {"requestId": MISSING})["code"]
        == 4300
    )


def test_an_account_has_at_most_two_keys(server: Server) -> None:
    acct = server.new_account()
    server.cli("key", "create", acct.uin)
    r = server.cli("key", "create", acct.uin, check=False)
    assert r.returncode == 1 and "2 keys" in r.stderr


def test_reused_nonce_is_4500(server: Server) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    assert server.raw(params)["code"] == 5000
    res = server.raw(params)
    assert res["code"] == 4500 and "Nonce" in res["message"]
    # The same nonce with another timestamp (a new signature) is still a reuse.
    again = server.signed(
        "DescribeClusterTaskResult",
        {"requestId": MISSING},
        nonce=int(params["Nonce"]),
        timestamp=int(params["Timestamp"]) + 1,
    )
    assert server.raw(again)["code"] == 4500


@pytest.mark.parametrize("offset", [-7300, 7300])
def test_timestamp_outside_the_window_is_4500(server: Server, offset: int) -> None:
    params = server.signed(
        "DescribeClusterTaskResult", {"requestId": MISSING}, timestamp=int(time.time()) + offset
    )
    res = server.raw(params)
    assert res["code"] == 4500 and "Timestamp" in res["message"]


@pytest.mark.parametrize("name", ["Action", "SecretId", "Signature", "Timestamp", "Nonce"])
def test_missing_common_parameter_is_4000_naming_it(server: Server, name: str) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    del params[name]
    res = server.raw(params)
    assert res["code"] == 4000 and name in res["message"], res


@pytest.mark.parametrize("name", ["Timestamp", "Nonce"])
def test_malformed_timestamp_or_nonce_is_4000(server: Server, name: str) -> None:
    params = server.signed("DescribeClusterTaskResult", {"requestId": MISSING})
    params[name] = "12ab"
    res = server.raw(params)
    assert res["code"] == 4000 and name in res["message"]


def test_missing_action_parameter_is_4000_naming_it(server: Server) -> None:
    res = server.client().call("DescribeClusterTaskResult", {})
    assert res["code"] == 4000 and res["codeDesc"] == "MissingParameter"
    assert "requestId" in res["message"]


def test_malformed_action_parameter_is_4000_naming_it(server: Server) -> None:
    res = server.client().call("DescribeClusterTaskResult", {"requestId": "abc"})
    assert res["code"] == 4000 and res["codeDesc"] == "InvalidParameter"
    assert "requestId" in res["message"] and "abc" in res["message"]


def test_unknown_region_is_4000(server: Server) -> None:
    res = server.client(region="xx").call("DescribeClusterTaskResult", {"requestId": MISSING})
    assert res["code"] == 4000 and "Region" in res["message"]


def test_unknown_action_is_invalid_action(server: Server) -> None:
    res = server.client().call("DescribeNothing", {})
    assert res["code"] == 4000 and res["codeDesc"] == "InvalidAction"


def test_document_action_not_yet_built_is_6200_not_implemented(server: Server) -> None:
    from openccs.api.registry import finalize

    missing = [a.name for a in finalize().document_actions() if not a.implemented]
    if not missing:
        pytest.skip("every action of the document is implemented")
    res = server.client().call(missing[0], {})
    assert res["code"] == 6200 and res["codeDesc"] == "NotImplemented"
    assert missing[0] in res["message"]


def test_actions_match_without_case_and_through_the_document_typos(server: Server) -> None:
    c = server.client()
    assert c.call("describeclustertaskresult", {"requestId": MISSING})["code"] == 5000
    # The document's misspellings reach the real actions (which then ask for clusterId).
    for typo in ("Createlngress", "MosifyIngress"):
        res = c.call(typo, {"ingressName": "x"})
        assert res["code"] == 4000 and "clusterId" in res["message"], (typo, res)


def test_test_actions_are_hidden_unless_enabled() -> None:
    from openccs.api.registry import finalize

    reg = finalize()
    with pytest.raises(Exception) as e:
        reg.lookup("OpenccsRunTestTask")
    assert getattr(e.value, "code_desc", "") == "InvalidAction"


def test_oversized_get_and_post_are_4000(server: Server) -> None:
    params = server.signed(
        "DescribeClusterTaskResult", {"requestId": MISSING, "pad": "x" * 33_000}, method="GET"
    )
    res = server.raw(params, method="GET")
    assert res["code"] == 4000 and res["codeDesc"] == "RequestTooLarge"
    params = server.signed(
        "DescribeClusterTaskResult", {"requestId": MISSING, "pad": "x" * 1_100_000}
    )
    res = server.raw(params, method="POST")
    assert res["code"] == 4000 and res["codeDesc"] == "RequestTooLarge"
    # Under the limits the same padding is fine (unknown parameters are ignored).
    params = server.signed(
        "DescribeClusterTaskResult", {"requestId": MISSING, "pad": "x" * 30_000}, method="GET"
    )
    assert server.raw(params, method="GET")["code"] == 5000


def test_another_accounts_task_does_not_exist(server: Server) -> None:
    owner, other = server.new_account(), server.new_account()
    request_id = run_task(server, owner, stepSeconds="0")
    res = server.client(other).call("DescribeClusterTaskResult", {"requestId": request_id})
    missing = server.client(other).call("DescribeClusterTaskResult", {"requestId": 10**9})
    assert res["code"] == missing["code"] == 5000
    assert res["message"].replace(str(request_id), "N") == missing["message"].replace(
        str(10**9), "N"
    )
    assert (
        server.client(owner).call("DescribeClusterTaskResult", {"requestId": request_id})["code"]
        == 0
    )


def _subuser(server: Server, owner_uin: str, *extra: str):
    import json

    from .conftest import Account

    out = json.loads(server.cli("subuser", "create", owner_uin, *extra).stdout)
    return Account(0, out["uin"], out["secretId"], out["secretKey"])


def test_subaccount_without_the_action_is_4101(server: Server) -> None:
    owner = server.new_account()
    sub = _subuser(server, owner.uin, "--action", "DescribeClusterTaskResult")
    c = server.client(sub)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 5000
    res = c.call("OpenccsRunTestTask", {"stepSeconds": "0"})
    assert res["code"] == 4101 and "OpenccsRunTestTask" in res["message"]


def test_subaccount_outside_its_resources_is_4102_naming_it(server: Server) -> None:
    owner = server.new_account()
    sub = _subuser(server, owner.uin, "--action", "*", "--resource", "cls-team*")
    c = server.client(sub)
    res = c.call("OpenccsRunTestTask", {"stepSeconds": "0", "clusterId": "cls-other1"})
    assert res["code"] == 4102 and "cls-other1" in res["message"]
    res = c.call("OpenccsRunTestTask", {"stepSeconds": "0", "clusterId": "cls-team1"})
    assert res["code"] == 0
    # A sub-account acts inside its owner's account: the owner sees the task.
    owner_view = server.client(owner).call(
        "DescribeClusterTaskResult", {"requestId": res["data"]["requestId"]}
    )
    assert owner_view["code"] == 0


def test_subaccount_reads_only_the_tasks_of_resources_it_is_allowed(server: Server) -> None:
    owner = server.new_account()
    sub = _subuser(server, owner.uin, "--action", "*", "--resource", "cls-team*")
    c = server.client(sub)
    others = run_task(server, owner, stepSeconds="0", clusterId="cls-other1")
    teams = run_task(server, owner, stepSeconds="0", clusterId="cls-team1")
    no_resource = run_task(server, owner, stepSeconds="0")
    assert c.call("DescribeClusterTaskResult", {"requestId": teams})["code"] == 0
    for request_id in (others, no_resource):
        res = c.call("DescribeClusterTaskResult", {"requestId": request_id})
        assert res["code"] == 4102 and f"task {request_id}" in res["message"], res
        assert "data" not in res
    assert (
        server.client(owner).call("DescribeClusterTaskResult", {"requestId": others})["code"] == 0
    )


def test_every_action_declares_its_resources_or_says_why_not() -> None:
    from openccs.api.registry import finalize

    silent = [
        a.name for a in finalize().all() if a.implemented and not a.resources and not a.unscoped
    ]
    assert not silent, f"actions with neither resources nor a reason: {silent}"


def test_subaccount_lists_only_the_vpcs_it_is_allowed(server: Server) -> None:
    owner = server.default  # the account with the default VPC
    vpcs = server.client(owner).call("DescribeVpcEx")
    assert vpcs["code"] == 0 and vpcs["totalCount"] >= 1, vpcs
    vpc = vpcs["data"][0]["unVpcId"]
    sub = _subuser(server, owner.uin, "--action", "*", "--resource", "cls-*")
    c = server.client(sub)
    assert c.call("DescribeVpcEx")["totalCount"] == 0
    assert c.call("DescribeSubnetEx")["totalCount"] == 0
    res = c.call(
        "CreateEmptyCluster", {"clusterName": "x", "vpcId": vpc, "clusterCIDR": "172.31.0.0/20"}
    )
    assert res["code"] == 4102 and vpc in res["message"], res
    server.cli("subuser", "allow", sub.uin, "--resource", vpc)
    assert c.call("DescribeVpcEx")["totalCount"] == 1


def test_subaccount_allow_list_changes_take_effect_at_once(server: Server) -> None:
    owner = server.new_account()
    sub = _subuser(server, owner.uin)
    c = server.client(sub)
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 4101
    server.cli("subuser", "allow", sub.uin, "--action", "DescribeClusterTaskResult")
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 5000


def test_failed_task_answers_fail_with_the_reason(server: Server) -> None:
    request_id = run_task(server, stepSeconds="0", failAt="2")
    data = server.wait_task(request_id)
    assert data["status"] == "fail"
    assert "step 2" in data["reason"]
    assert [s["status"] for s in data["steps"]][:2] == ["done", "done"]


def test_https_listener_serves_the_same_api(server: Server) -> None:
    a = server.default
    from openccs.client import Client

    c = Client(server.https_url, a.secret_id, a.secret_key, ca=str(server.ca))
    assert c.call("DescribeClusterTaskResult", {"requestId": MISSING})["code"] == 5000
    with pytest.raises(httpx.ConnectError):
        Client(server.https_url, a.secret_id, a.secret_key).call("DescribeClusterTaskResult")


def test_owner_only_action_is_4103_for_a_subaccount(server: Server) -> None:
    owner = server.new_account()
    sub = _subuser(server, owner.uin, "--action", "*")
    res = server.client(sub).call("OpenccsWhoAmI", {})
    assert res["code"] == 4103 and "OpenccsWhoAmI" in res["message"]
    res = server.client(owner).call("OpenccsWhoAmI", {})
    assert res["code"] == 0 and res["data"]["uin"] == owner.uin
