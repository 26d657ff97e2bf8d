"""Machines pull from the registry: on their VPC gateway, trusting openccs's CA, with their
cluster's own pull-only credential; and the pieces underneath (forwarder, trust files)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openccs.cloud import dockerapi
from openccs.crypto import SecretBox
from openccs.domain.cloud import gateway_of
from openccs.registry import certsd
from openccs.registry.clusters import pull_auth_for_cluster, registry_auth_header
from openccs.registry.forward import Forwarder
from openccs.registry.models import CcrClusterCredential
from openccs.store.db import Store
from openccs.store.models import Instance, Subnet

from .conftest import Server, unique_cluster_cidr, unique_vpc_cidr
from .test_clusters import Sdk, machine_params, site_of, socket_of
from .test_registry_lib import (
    PASSWORD,
    Registry,
    call_ok,
    login,
    push_ok,
    registry_of,
    tagged_image,
    tls,
    wait_for,
)

SERVICE = "openccs-registry"


def _store(server: Server) -> Store:
    return Store(server.db_url or f"sqlite:///{server.data_dir / 'openccs.db'}")


def _owner_login(server: Server) -> str:
    """The default account (the clusters' owner here) with a registry password."""
    res = server.client().call("RegisterRepositoryAccountNew", {"password": PASSWORD})
    if res["code"] != 0:  # registered by an earlier test: set the password we know
        call_ok(server, None, "ChangePassword", password=PASSWORD)
    return f"{server.default.uin}:{PASSWORD}"


def _docker_pull(sock: Path, image: str, auth: dict[str, str]) -> tuple[bool, str]:
    """`POST /images/create` as a node agent does it; (pulled, what dockerd said)."""
    repo, _, tag = image.rpartition(":")
    with dockerapi.client(sock, timeout=120) as c:
        r = c.post(
            "/images/create",
            params={"fromImage": repo, "tag": tag},
            headers={"X-Registry-Auth": registry_auth_header(auth)},
        )
    errors = []
    for line in r.text.splitlines():
        try:
            errors.append(json.loads(line).get("error"))
        except ValueError:
            errors.append(line)
    return r.status_code == 200 and not any(errors), r.text


def _token(url: str, auth: tuple[str, str], scope: str, verify: Any) -> httpx.Response:
    return httpx.get(
        url, params={"service": SERVICE, "scope": scope}, auth=auth, verify=verify, timeout=10
    )


def _realm(reg_endpoint: str, verify: ssl.SSLContext) -> str:
    """The token realm the registry sends clients to (from its 401 challenge)."""
    r = httpx.get(f"https://{reg_endpoint}/v2/", verify=verify, timeout=10)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    return challenge.split('realm="', 1)[1].split('"', 1)[0]


def _jwt_claims(token: str) -> str:
    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()


def _unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def test_a_clusters_machines_pull_what_its_owner_may_read(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reg: Registry = registry_of(server)
    owner_creds = _owner_login(server)
    ns = _unique("mp")
    call_ok(server, None, "CreateCCRNamespace", namespace=ns)
    push_ok(reg, tagged_image(tmp_path, "mine"), f"{ns}/app:v1", owner_creds, server.default)
    other = server.new_account()
    other_creds = login(server, other)
    other_ns = _unique("mo")
    call_ok(server, other, "CreateCCRNamespace", namespace=other_ns)
    push_ok(reg, tagged_image(tmp_path, "secret"), f"{other_ns}/secret:v1", other_creds, other)
    push_ok(reg, tagged_image(tmp_path, "shared"), f"{other_ns}/shared:v1", other_creds, other)
    call_ok(server, other, "UpdateRepositoryPublic", reponame=f"{other_ns}/shared", public=1)

    # A machine in the VPC's second subnet: its gateway is not the one the realm is on, so
    # the pull proves both an endpoint per gateway and a realm every machine reaches.
    api = Sdk(server, server.default, monkeypatch)
    vpc_id, subnet_id = api.network(100004)
    created = api.ok(
        "CreateCluster",
        {"clusterName": "pulls", "clusterCIDR": unique_cluster_cidr(), "vpcId": vpc_id,
         "osName": "ubuntu16.04.1 LTSx86_64",
         **machine_params(subnet_id, zoneId="ap-guangzhou-4")},
    )  # fmt: skip
    cluster_id = created["clusterId"]
    deleted = False
    store = _store(server)
    box = SecretBox.from_data_dir(server.data_dir)
    try:
        assert api.wait(created["requestId"])["status"] == "succ"
        (node,) = api.nodes(cluster_id)
        iid = node["instanceId"]
        with store.session() as s:
            ins = s.get(Instance, iid)
            assert ins is not None
            sub = s.get(Subnet, ins.subnet_id)
            assert sub is not None
            gateway = str(gateway_of(sub.cidr).ip)
            first = s.scalars(select(Subnet.cidr).order_by(Subnet.num_id)).first()
        assert first is not None and str(gateway_of(first).ip) != gateway
        endpoint = f"{gateway}:{reg.host.rsplit(':', 1)[1]}"

        # The machines' dockerds trust openccs's CA for the endpoint, in a file of this site.
        trust = certsd.CERTS_D / endpoint
        assert (trust / "ca.crt").read_bytes() == server.ca.read_bytes()
        assert (trust / certsd.MARKER).read_text().strip() == site_of(server)

        with store.session() as s:
            auth = pull_auth_for_cluster(s, box, cluster_id, endpoint)
        assert auth["username"] == f"cluster-{cluster_id}" and auth["serveraddress"] == endpoint
        with store.session() as s:  # asked again: the same credential
            assert pull_auth_for_cluster(s, box, cluster_id, endpoint) == auth

        sock = socket_of(server, iid)
        ok, said = _docker_pull(sock, f"{endpoint}/{ns}/app:v1", auth)
        assert ok, said
        out = subprocess.run(
            ["docker", "-H", f"unix://{sock}", "run", "--rm", f"{endpoint}/{ns}/app:v1",
             "sh", "-c", "echo ok; cat /etc/image-tag"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0 and out.stdout.split() == ["ok", "mine"], out.stderr

        # Another account's private image is refused; its public one pulls.
        ok, said = _docker_pull(sock, f"{endpoint}/{other_ns}/secret:v1", auth)
        assert not ok and ("denied" in said or "unauthorized" in said), said
        ok, said = _docker_pull(sock, f"{endpoint}/{other_ns}/shared:v1", auth)
        assert ok, said

        # The credential never pushes, not even into the owner's own repositories; the
        # realm (reached here through the gateway, as machines reach it) says so.
        verify = tls(server)
        realm = _realm(endpoint, verify)
        assert realm.startswith("https://") and "127.0.0.1" not in realm
        creds = (auth["username"], auth["password"])
        for repo in (f"{ns}/app", f"{ns}/newrepo"):
            r = _token(realm, creds, f"repository:{repo}:push,pull", verify)
            assert r.status_code == 200, r.text
            (access,) = json.loads(_jwt_claims(r.json()["token"]))["access"]
            assert access["actions"] == ["pull"]
        r = _token(realm, creds, f"repository:{other_ns}/secret:pull,push", verify)
        assert json.loads(_jwt_claims(r.json()["token"]))["access"][0]["actions"] == []
        r = _token(realm, (auth["username"], "wrong"), f"repository:{ns}/app:pull", verify)
        assert r.status_code == 401

        deleting = api.ok("DeleteCluster", {"clusterId": cluster_id})
        assert api.wait(deleting["requestId"])["status"] == "succ"
        deleted = True
        # The machines' trust went with them, at once (not at the next sweep), unless other
        # machines still live in the subnet.
        with store.session() as s:
            others = s.scalars(select(Instance.id).where(Instance.subnet_id == sub.id)).all()
        assert trust.exists() == bool(others)
        # Gone with its cluster: the token endpoint no longer knows the credential.
        r = _token(realm, creds, f"repository:{ns}/app:pull", verify)
        assert r.status_code == 401
        with store.session() as s:
            assert s.get(CcrClusterCredential, cluster_id) is None
    finally:
        if not deleted:
            res = api.call("DeleteCluster", {"clusterId": cluster_id})
            if res["code"] == 0:
                api.wait(res["data"]["requestId"])
        store.dispose()


def test_a_vpc_made_while_serving_gets_an_endpoint(own_server: Server, tmp_path: Path) -> None:
    """A VPC created by the CLI next to the running server: within a reconciliation the
    registry's certificate names its gateway, machines there trust it, and pushes still
    work through the realm."""
    if own_server.backend != "sqlite":
        pytest.skip("the reconciliation is the same on both stores")
    server = own_server
    reg = registry_of(server)
    acct = server.new_account()
    creds = login(server, acct)
    call_ok(server, acct, "CreateCCRNamespace", namespace="newvpc")
    cidr = unique_vpc_cidr()
    subnet_cidr = cidr.replace(".0/20", ".0/24")
    made = json.loads(
        server.cli("vpc", "create", acct.uin, "--cidr", cidr,
                   "--subnet", f"ap-guangzhou-3={subnet_cidr}").stdout
    )  # fmt: skip
    assert made["vpcId"].startswith("vpc-")
    gateway = str(gateway_of(subnet_cidr).ip)
    port = reg.host.rsplit(":", 1)[1]
    endpoint = f"{gateway}:{port}"
    verify = tls(server)

    def served() -> bool:
        try:
            return httpx.get(f"https://{endpoint}/v2/", verify=verify, timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

    wait_for(served, timeout=30, what=f"the registry on {endpoint}")
    # No machine lives in the subnet yet: no dockerd there needs to trust the registry.
    assert not (certsd.CERTS_D / endpoint).exists()
    push_ok(reg, tagged_image(tmp_path, "v1"), "newvpc/app:v1", creds, acct)


# --- the pieces -------------------------------------------------------------------------------


def test_forwarder_copies_both_ways_and_follows_its_routes() -> None:
    upstream = socket.create_server(("127.0.0.1", 0))
    port = upstream.getsockname()[1]

    def echo() -> None:
        while True:
            try:
                conn, _ = upstream.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(data[::-1])

    threading.Thread(target=echo, daemon=True).start()
    fwd = Forwarder("test-fwd")
    try:
        # 127.0.0.2 is on lo; 192.0.2.77 is nowhere (bound anyway, served once it appears).
        assert fwd.sync({("127.0.0.2", port): ("127.0.0.1", port),
                         ("192.0.2.77", port): ("127.0.0.1", port)}) == []  # fmt: skip
        payload = secrets.token_bytes(3 << 20)
        with socket.create_connection(("127.0.0.2", port), timeout=10) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(1 << 20):
                got += chunk
        assert got == payload[::-1]
        fwd.sync({("192.0.2.77", port): ("127.0.0.1", port)})
        assert set(fwd.routes) == {("192.0.2.77", port)}
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=2)
    finally:
        fwd.close()
        upstream.close()
    assert fwd.routes == {}


def test_trust_files_belong_to_their_site(tmp_path: Path) -> None:
    base = tmp_path / "certs.d"
    ca = b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    (base / "10.9.9.1:5000").mkdir(parents=True)  # the operator's: never touched
    (base / "10.9.9.1:5000" / "ca.crt").write_bytes(b"theirs")
    changed, foreign = certsd.sync(
        "ab12", ca, ["10.1.1.1:5000", "10.1.2.1:5000", "10.9.9.1:5000"], base
    )
    assert changed == ["+10.1.1.1:5000", "+10.1.2.1:5000"]
    assert foreign == [str(base / "10.9.9.1:5000")]
    assert certsd.sync("cd34", ca, ["10.2.1.1:6000"], base) == (["+10.2.1.1:6000"], [])
    assert (base / "10.1.1.1:5000" / "ca.crt").read_bytes() == ca
    assert (base / "10.9.9.1:5000" / "ca.crt").read_bytes() == b"theirs"
    # Nothing to do the second time; a subnet gone loses its directory.
    assert certsd.sync("ab12", ca, ["10.1.1.1:5000", "10.1.2.1:5000"], base) == ([], [])
    assert certsd.sync("ab12", ca, ["10.1.1.1:5000"], base) == (["-10.1.2.1:5000"], [])
    # A crashed site's leftover under the same name is taken over.
    (base / "10.2.1.1:6000" / "ca.crt").write_bytes(b"old")
    assert certsd.sync("ab12", ca, ["10.1.1.1:5000", "10.2.1.1:6000"], base)[0] == [
        "+10.2.1.1:6000"
    ]
    assert certsd.sync("cd34", ca, [], base) == ([], [])  # not cd34's any more
    assert certsd.sync("ab12", ca, ["10.1.1.1:5000"], base)[0] == ["-10.2.1.1:6000"]
    certsd.sync("cd34", ca, ["10.2.1.1:6000"], base)
    assert certsd.sweep("ab12", base) == [str(base / "10.1.1.1:5000")]
    assert sorted(p.name for p in base.iterdir()) == ["10.2.1.1:6000", "10.9.9.1:5000"]
    assert certsd.sweep(None, base) == [str(base / "10.2.1.1:6000")]
    assert [p.name for p in base.iterdir()] == ["10.9.9.1:5000"]


def test_images_naming_this_registry_point_at_the_machines_gateway(tmp_path: Path) -> None:
    from openccs.config import Settings
    from openccs.registry.client import RegistryError
    from openccs.registry.daemon import RegistryDaemon
    from openccs.registry.jwt import TokenSigner
    from openccs.registry.machines import image_for_machine, registry_endpoint_for
    from openccs.registry.runtime import RegistryRuntime

    settings = Settings(data_dir=tmp_path)
    daemon = RegistryDaemon(tmp_path / "registry", settings.tls_dir, ["127.0.0.1", "10.5.1.1"])
    signer, bundle = TokenSigner.ensure(tmp_path / "registry")
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    rt = RegistryRuntime(settings, store, daemon, signer, bundle, gateways=("10.5.1.1", "10.5.2.1"))
    port = daemon.port
    assert registry_endpoint_for(rt, "10.5.2.1") == f"10.5.2.1:{port}"
    with pytest.raises(RegistryError, match=r"not served on 10\.9\.9\.9"):
        registry_endpoint_for(rt, "10.9.9.9")
    for ours in (f"127.0.0.1:{port}", f"localhost:{port}", f"10.5.1.1:{port}"):
        assert (
            image_for_machine(rt, f"{ours}/ns/app:v1", "10.5.2.1") == f"10.5.2.1:{port}/ns/app:v1"
        )
    for theirs in ("busybox", "ns/app:v1", "docker.io/library/nginx:1", f"10.9.9.9:{port}/a/b"):
        assert image_for_machine(rt, theirs, "10.5.2.1") == theirs
    store.dispose()
