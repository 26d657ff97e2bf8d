"""The Kubernetes API's routes, without machines: one cluster's API over a real (SQLite)
store of a server that is built but not started; what kubectl and a hostile client reach
by path and method, and how errors answer (Status objects, never the framework's text)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import openccs.actions  # noqa: F401  (first: the actions and kube.app import each other)
from openccs.config import Settings
from openccs.domain import accounts
from openccs.errors import ApiError, invalid_parameter
from openccs.kube.app import SUBRESOURCES, ClusterApi
from openccs.kube.errors import KubeError, as_kube
from openccs.server import build_services

TOKEN = "s3cret-token"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class Client:
    """Requests straight into the app (ASGI), with the cluster's token unless told."""

    def __init__(self, api: ClusterApi) -> None:
        self.api = api

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.api.app),
                base_url="http://kube",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data: Path = tmp_path_factory.mktemp("kube-routes")
    services = build_services(Settings(data_dir=data, http=None, https=None))
    with services.store.session() as s:
        account_id = accounts.create_account(s, name="routes").id
    yield Client(ClusterApi(services, "cls-routes", account_id, TOKEN))
    services.store.engine.dispose()


def status(r: httpx.Response, code: int) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body: dict[str, Any] = r.json()
    assert body["kind"] == "Status" and body["code"] == code, body
    return body


def test_discovery_lists_each_subresource_under_its_kinds_group(client: Client) -> None:
    core = {r["name"]: r for r in client.get("/api/v1").json()["resources"]}
    apps = {r["name"]: r for r in client.get("/apis/apps/v1").json()["resources"]}
    assert core["pods/log"]["verbs"] == ["get"] and core["pods/log"]["kind"] == "Pod"
    assert core["pods/exec"]["verbs"] == ["create", "get"]
    assert (
        core["pods/eviction"]["group"] == "policy" and core["pods/eviction"]["kind"] == "Eviction"
    )
    assert apps["deployments/scale"]["group"] == "autoscaling"
    assert apps["deployments/scale"]["verbs"] == ["get", "patch", "update"]
    listed = {n for n in (*core, *apps) if "/" in n}
    assert listed == {f"{parent}/{name}" for parent, name in SUBRESOURCES}
    assert "deployments/scale" not in core and "pods/log" not in apps
    assert client.get("/apis/apps").json()["preferredVersion"]["groupVersion"] == "apps/v1"
    assert client.get("/version/").json()["gitVersion"].endswith("-openccs")
    assert client.get("/healthz").text == "ok"


def test_resource_paths(client: Client) -> None:
    assert client.get("/api/v1/namespaces").json()["kind"] == "NamespaceList"
    assert client.get("/api/v1/namespaces/default/pods").json()["kind"] == "PodList"
    assert client.get("/api/v1/pods/").json()["kind"] == "PodList"  # a trailing slash
    table = client.get("/apis/apps/v1/deployments", headers={"Accept": TABLE}).json()
    assert table["kind"] == "Table" and table["columnDefinitions"][0]["name"] == "Name"
    # A kind in another group, a cluster-wide kind in a namespace, a kind nobody serves.
    for path in (
        "/apis/apps/v1/pods",
        "/api/v1/deployments",
        "/api/v1/namespaces/default/nodes",
        "/api/v1/namespaces/default/secrets",
        "/apis/nope/v1/things",
        "/nowhere",
        "/",
    ):
        body = status(client.get(path), 404)
        assert body["reason"] == "NotFound" and path.rstrip("/") in body["message"]
    # `namespaces/{name}` is an object of the cluster-wide kind, not a namespace's path.
    body = status(client.get("/api/v1/namespaces/team"), 404)
    assert body["message"] == 'namespaces "team" not found'
    body = status(client.get("/apis/apps/v1/namespaces/team/deployments/web"), 404)
    assert body["message"] == 'deployments.apps "web" not found'


def test_subresources_and_methods(client: Client) -> None:
    pods = "/api/v1/namespaces/default/pods"
    # Logs and scale look the object up first.
    assert status(client.get(f"{pods}/web-1/log"), 404)["message"] == 'pods "web-1" not found'
    scale = client.get("/apis/apps/v1/namespaces/default/deployments/web/scale")
    assert status(scale, 404)["message"] == 'deployments.apps "web" not found'
    # exec over plain HTTP is a client that fell back to SPDY.
    for sub in ("exec", "attach", "portforward"):
        assert "SPDY" in status(client.post(f"{pods}/web-1/{sub}"), 400)["message"]
    assert status(client.get(f"{pods}/web-1/status"), 404)["message"].endswith("(status)")
    # Verbs a kind does not have are the writes' answers, as Status objects.
    made = client.post(pods, json={"metadata": {"name": "p"}})
    assert "pods belong to Deployments" in status(made, 405)["message"]
    assert status(client.post(f"{pods}/web-1/log", json={}), 405)["reason"] == "MethodNotAllowed"
    # metrics.k8s.io (from the sampler, which has not sampled yet).
    nodes = client.get("/apis/metrics.k8s.io/v1beta1/nodes")
    assert nodes.status_code == 200 and nodes.json()["kind"] == "NodeMetricsList"
    pod = client.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1")
    assert status(pod, 404)["message"] == 'pods.metrics.k8s.io "web-1" not found'
    # A method a path does not serve is a Status too, not the framework's plain text.
    assert status(client.delete("/apis/metrics.k8s.io/v1beta1/nodes"), 404)
    bad = client.get(f"{pods}", params={"labelSelector": "a==="})
    assert status(bad, 400)["reason"] == "BadRequest"
    dry = client.post(pods, params={"dryRun": "Some"}, json={"metadata": {"name": "p"}})
    assert "dryRun" in status(dry, 400)["message"]


def test_the_app_is_served_as_asgi3(client: Client) -> None:
    config = uvicorn.Config(client.api.app, log_config=None)
    config.load()
    assert config.interface == "asgi3"


def test_credentials_come_before_any_route(client: Client) -> None:
    for path in ("/version", "/api/v1/pods", "/nowhere", "/api/v1/namespaces/x/pods/y/exec"):
        for auth in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
            assert status(client.get(path, headers=auth), 401)["reason"] == "Unauthorized"
    basic = client.get("/api/v1/pods", auth=("admin", TOKEN), headers={"Authorization": ""})
    assert basic.status_code == 200


def test_domain_errors_are_status_objects_in_one_place() -> None:
    found = as_kube(ApiError(5000, "ResourceNotFound", "cluster cls-x does not exist"))
    assert found is not None and found.code == 404
    assert found.status()["message"] == "cluster cls-x does not exist"
    made = as_kube(ApiError(4000, "ResourceExists", "exists"))
    assert made is not None and (made.code, made.reason) == (409, "AlreadyExists")
    bad = as_kube(invalid_parameter("replicas", "must be positive"))
    assert bad is not None and bad.code == 422 and bad.reason == "Invalid"
    busy = as_kube(ApiError(5100, "OperationFailed", "busy"))
    assert busy is not None and busy.code == 409
    kube = KubeError(410, "too old")
    assert as_kube(kube) is kube
    assert as_kube(ValueError("a fault of ours")) is None
