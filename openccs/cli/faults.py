"""`openccs fault ...`: inject a fault, list faults, end one, report what it did; with
`--probe URL` openccs runs a request loop to that load balancer through the fault, and the
command waits for the loop to be over and prints the fault's report."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from openccs.cli.context import EXIT_FAILED, CliError
from openccs.cli.context import client as signed_client
from openccs.cli.output import output_option, print_json, print_rows

KINDS = [
    "machine-stop", "machine-reboot", "dockerd-kill", "machine-freeze",
    "net-cut", "net-loss", "registry-cut", "registry-refuse", "registry-stall", "pod-kill",
    "pod-liveness", "disk-fill",
]  # fmt: skip
WAIT_EVERY = 1.0


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
    f.add_argument(
        "--which",
        default="layer",
        help="disk-fill: 'layer' (the pod's writable layer, default) or one of its volumes;"
        " needs machines with disks of their own (openccs serve --machine-disks loop)",
    )
    f.add_argument("--state", choices=["active", "ended", "failed"], help="ls: filter")
    f.add_argument(
        "--probe",
        metavar="URL",
        help="inject: openccs GETs this URL (one of your load balancers) through the fault;"
        " wait for the end and print the report",
    )
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
    if args.ref == "disk-fill":
        params["which"] = args.which
    if args.probe:
        params["probeUrl"] = args.probe
    res = client.call("OpenccsCreateFault", params)
    print_json(res)
    if res.get("code") != 0:
        return EXIT_FAILED
    if args.probe:
        report = wait_for_report(client, res["data"]["faultId"])
        print_json(report)
        return 0 if report.get("code") == 0 else EXIT_FAILED
    return 0


def wait_for_report(client: Any, fault_id: str) -> dict[str, Any]:
    """The fault's report once it has ended and its probe loop is over."""
    while True:
        res = client.call("OpenccsDescribeFaultReport", {"faultId": fault_id})
        data = res.get("data") or {}
        if res.get("code") != 0 or (
            data.get("state") != "active" and not (data.get("probe") or {}).get("running")
        ):
            return dict(res)
        time.sleep(WAIT_EVERY)
