"""`openccs kubeconfig CLUSTER`: a kubeconfig for kubectl, from DescribeClusterSecurityInfo
(opening the external address with OperateClusterVip first when it is closed)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openccs.cli.context import EXIT_FAILED, CliError
from openccs.cli.context import client as signed_client


def add_parser(sub: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    k = sub.add_parser("kubeconfig", help="write a kubeconfig for a cluster's Kubernetes API")
    k.add_argument("cluster", help="the clusterId (cls-...)")
    k.add_argument(
        "--internal",
        action="store_true",
        help="the address machines of the cluster's VPC use, rather than the external one",
    )
    k.add_argument("-o", "--output", help="file to write (mode 0600); default: standard output")
    client_options(k)
    k.set_defaults(fn=cmd_kubeconfig)


def _call(client: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    res = client.call(action, params)
    if res.get("code") != 0:
        raise CliError(f"kubeconfig: {action}: {res.get('code')} {res.get('message')}", EXIT_FAILED)
    return dict(res.get("data") or {})


def _open_external(client: Any, cluster: str, timeout: float = 120) -> None:
    request_id = _call(client, "OperateClusterVip", {"clusterId": cluster, "operation": "Create"})[
        "requestId"
    ]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = _call(client, "DescribeClusterTaskResult", {"requestId": request_id})
        if task["status"] == "succ":
            return
        if task["status"] == "fail":
            raise CliError(f"kubeconfig: opening the address failed: {task['reason']}", EXIT_FAILED)
        time.sleep(0.5)
    raise CliError("kubeconfig: the external address did not open in time", EXIT_FAILED)


def kubeconfig(cluster: str, info: dict[str, Any], server: str) -> dict[str, Any]:
    """The kubeconfig of one cluster: its CA embedded, a context named after the cluster."""
    ca = base64.b64encode(info["certificationAuthority"].encode()).decode()
    user = f"{cluster}-{info['userName']}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": cluster,
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": user, "user": {"token": info["password"]}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "preferences": {},
    }


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    client = signed_client(args)
    info = _call(client, "DescribeClusterSecurityInfo", {"clusterId": args.cluster})
    if args.internal:
        server = info.get("clusterInternalEndpoint") or ""
    else:
        server = info["clusterExternalEndpoint"]
        if not server:
            print(f"opening the external address of {args.cluster}", file=sys.stderr)
            _open_external(client, args.cluster)
            info = _call(client, "DescribeClusterSecurityInfo", {"clusterId": args.cluster})
            server = info["clusterExternalEndpoint"]
    if not server:
        raise CliError(f"kubeconfig: {args.cluster} has no address to reach", EXIT_FAILED)
    text = json.dumps(kubeconfig(args.cluster, info, server), indent=2) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(out, 0o600)
    print(f"wrote {out} (context {args.cluster}, server {server})", file=sys.stderr)
    return 0
