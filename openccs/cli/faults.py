"""`openccs fault ...`: inject a fault, list faults, end one, report what it did; with
`--probe URL` a request loop runs through the fault and its failures are counted."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from openccs.cli.context import EXIT_FAILED, CliError
from openccs.cli.context import client as signed_client
from openccs.cli.output import output_option, print_json, print_rows

KINDS = [
    "machine-stop", "machine-reboot", "dockerd-kill", "machine-freeze",
    "net-cut", "net-loss", "registry-cut", "registry-refuse", "registry-stall", "pod-kill",
]  # fmt: skip
PROBE_EVERY = 0.2


def register(sub: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    f = sub.add_parser("fault", help="faults on purpose: inject|ls|end|report")
    f.add_argument("op", choices=["inject", "ls", "end", "report"])
    f.add_argument("ref", nargs="?", help="inject: the kind; end, report: the fault id")
    f.add_argument("--instance", help="the machine (instanceId)")
    f.add_argument("--cluster", help="the cluster (pod and registry faults; ls: filter)")
    f.add_argument("--namespace", default="default")
    f.add_argument("--pod", help="the pod (pod faults)")
    f.add_argument("--duration", type=int, default=60, help="seconds (default 60)")
    f.add_argument("--direction", choices=["both", "in", "out"], default="both")
    f.add_argument("--percent", type=int, default=50, help="net-loss: share of packets")
    f.add_argument("--state", choices=["active", "ended", "failed"], help="ls: filter")
    f.add_argument("--probe", help="inject: GET this URL in a loop until the fault ends")
    client_options(f)
    output_option(f)
    f.set_defaults(fn=cmd_fault)


def cmd_fault(args: argparse.Namespace) -> int:
    client = signed_client(args)
    if args.op == "ls":
        filters = {k: v for k, v in (("clusterId", args.cluster), ("state", args.state)) if v}
        res = client.call("OpenccsDescribeFaults", {**filters, "limit": 100})
        if res.get("code") != 0:
            print_json(res)
            return EXIT_FAILED
        cols = ["faultId", "kind", "instanceId", "podName", "state", "startTime", "endTime"]
        print_rows(args, res["data"]["faults"], cols)
        return 0
    if not args.ref:
        raise CliError(f"fault {args.op}: give the {'kind' if args.op == 'inject' else 'id'}")
    if args.op in ("end", "report"):
        action = "OpenccsEndFault" if args.op == "end" else "OpenccsDescribeFaultReport"
        res = client.call(action, {"faultId": args.ref})
        print_json(res)
        return 0 if res.get("code") == 0 else EXIT_FAILED
    if args.ref not in KINDS:
        raise CliError(f"unknown fault kind {args.ref!r} (one of: {', '.join(KINDS)})")
    params: dict[str, Any] = {"kind": args.ref, "duration": args.duration}
    for key, value in (("instanceId", args.instance), ("clusterId", args.cluster),
                       ("podName", args.pod)):  # fmt: skip
        if value:
            params[key] = value
    if args.pod:
        params["namespace"] = args.namespace
    if args.ref == "net-cut":
        params["direction"] = args.direction
    if args.ref == "net-loss":
        params["percent"] = args.percent
    res = client.call("OpenccsCreateFault", params)
    print_json(res)
    if res.get("code") != 0:
        return EXIT_FAILED
    if args.probe:
        fault_id = res["data"]["faultId"]
        print(json.dumps({"probe": probe_until_ended(client, fault_id, args.probe)}), flush=True)
    return 0


def probe_until_ended(client: Any, fault_id: str, url: str) -> dict[str, int]:
    """GET `url` every PROBE_EVERY s while the fault is active; count what failed."""
    sent = failed = 0
    while True:
        res = client.call("OpenccsDescribeFaults", {"faultId": fault_id})
        faults = (res.get("data") or {}).get("faults") or []
        if not faults or faults[0]["state"] != "active":
            return {"requests": sent, "failed": failed}
        sent += 1
        try:
            if httpx.get(url, timeout=2).status_code >= 500:
                failed += 1
        except httpx.HTTPError:
            failed += 1
        time.sleep(PROBE_EVERY)
