"""The official client, qcloudapi-sdk-python 2.0.15, unmodified, against a running server.

It always speaks HTTPS to its module's fixed host; tests point the module at the server
(`requestHost`) and trust openccs's CA through SSL_CERT_FILE, as a user would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from QcloudApi.common.api_exception import ApiClientNetworkException
from QcloudApi.modules.ccr import Ccr
from QcloudApi.modules.ccs import Ccs
from QcloudApi.modules.monitor import Monitor
from QcloudApi.modules.vpc import Vpc
from QcloudApi.qcloudapi import QcloudApi

from .conftest import Account, Server


@pytest.fixture
def sdk(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    host = f"127.0.0.1:{server.https_port}"
    for module in (Ccs, Ccr, Monitor, Vpc):
        monkeypatch.setattr(module, "requestHost", host)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    yield server


def call(
    account: Account,
    action: str,
    params: dict[str, Any],
    method: str = "POST",
    sig: str = "HmacSHA1",
    module: str = "ccs",
) -> dict[str, Any]:
    config = {
        "Region": "gz",
        "secretId": account.secret_id,
        "secretKey": account.secret_key,
        "method": method,
        "SignatureMethod": sig,
    }
    raw = QcloudApi(module, config).call(action, params)
    result: dict[str, Any] = json.loads(raw)
    return result


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("sig", ["HmacSHA1", "HmacSHA256"])
def test_sdk_runs_a_task_and_follows_it_to_succ(sdk: Server, method: str, sig: str) -> None:
    acct = sdk.default
    started = call(acct, "OpenccsRunTestTask", {"stepSeconds": 0.05}, method, sig)
    assert started["code"] == 0 and started["codeDesc"] == "Success", started
    request_id = started["data"]["requestId"]
    assert isinstance(request_id, int)
    deadline = time.monotonic() + 30
    while True:
        res = call(acct, "DescribeClusterTaskResult", {"requestId": request_id}, method, sig)
        assert res["code"] == 0, res
        if res["data"]["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert res["data"]["status"] == "succ"
    assert [s["status"] for s in res["data"]["steps"]] == ["done"] * 5


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sdk_gets_error_envelopes(sdk: Server, method: str) -> None:
    acct = sdk.default
    res = call(acct, "DescribeClusterTaskResult", {"requestId": 10**9}, method)
    assert res == {
        "code": 5000,
        "message": f"Task (requestId) {10**9} does not exist",
        "codeDesc": "ResourceNotFound",
    }
    res = call(acct, "DescribeClusterTaskResult", {"requestId": "x"}, method)
    assert res["code"] == 4000 and "requestId" in res["message"]
    bad = Account(acct.app_id, acct.uin, acct.secret_id, "wrong" + acct.secret_key[5:])
    assert call(bad, "DescribeClusterTaskResult", {"requestId": 1}, method)["code"] == 4100


def _not_implemented() -> list[tuple[str, str]]:
    from openccs.api.registry import finalize

    hosts = {"ccs.api.qcloud.com": "ccs", "ccr.api.qcloud.com": "ccr",
             "monitor.api.qcloud.com": "monitor"}  # fmt: skip
    return [(hosts[a.host], a.name) for a in finalize().document_actions()
            if not a.implemented and a.host in hosts][:2]  # fmt: skip


@pytest.mark.parametrize(("module", "action"), _not_implemented() or [("", "")])
def test_sdk_sees_not_implemented_actions_as_6200(sdk: Server, module: str, action: str) -> None:
    if not action:
        pytest.skip("every action of the document is implemented")
    res = call(sdk.default, action, {}, module=module)
    assert res["code"] == 6200 and action in res["message"]


def test_sdk_ingress_action_validates(sdk: Server) -> None:
    res = call(sdk.default, "CreateIngress", {"ingressName": "x"}, module="ccs")
    assert res["code"] == 4000 and "clusterId" in res["message"], res


def test_sdk_reaches_the_monitor_host(sdk: Server) -> None:
    res = call(sdk.default, "GetMonitorData", {}, module="monitor")
    assert res["code"] == -505 and res["codeDesc"] == "InvalidParameter.MissingParameter", res


def test_sdk_reaches_every_host_s_actions(sdk: Server) -> None:
    limits = call(sdk.default, "GetLimit", {}, module="ccr")
    assert limits["code"] == 0, limits
    vpcs = call(sdk.default, "DescribeVpcEx", {}, module="vpc")
    assert vpcs["code"] == 0 and vpcs["totalCount"] == 1 and vpcs["data"][0]["isDefault"]


def test_sdk_flattens_nested_parameters_as_the_server_decodes_them(sdk: Server) -> None:
    # The SDK turns lists and dicts into dotted names; unknown ones are ignored.
    res = call(
        sdk.default,
        "OpenccsRunTestTask",
        {"stepSeconds": 0, "extra": {"a": [1, 2]}, "clusterId": "cls-abc"},
    )
    assert res["code"] == 0


def test_sdk_refuses_the_server_without_trusting_its_ca(
    sdk: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    with pytest.raises(ApiClientNetworkException):
        call(sdk.default, "DescribeClusterTaskResult", {"requestId": 1})
