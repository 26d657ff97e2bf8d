"""`openccs serve`: the API server, its listeners and the knobs of its controllers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from openccs.cli.context import EXIT_FAILED, settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retention(text: str) -> dict[str, int]:
    """`raw=2h,60=3d,300=15d` -> seconds per kind of monitor data."""
    kinds = ("raw", "60", "300", "3600", "86400")
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        if not sep or kind not in kinds:
            raise ValueError(f"expected KIND=DURATION, KIND one of {', '.join(kinds)}: {part!r}")
        unit = _UNITS.get(value[-1:], 0)
        number = value[:-1] if unit else value
        if not number.isdigit() or int(number) <= 0:
            raise ValueError(f"bad duration {value!r} (e.g. 3600, 90m, 2h, 7d)")
        out[kind] = int(number) * (unit or 1)
    return out


def _retention(text: str) -> dict[str, int]:
    try:
        return parse_retention(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listener(text: str) -> str:
    """HOST:PORT, or '' for no listener."""
    from openccs.config import parse_hostport

    if text:
        try:
            _, port = parse_hostport(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not 0 < port < 65536:
            raise argparse.ArgumentTypeError(f"no such port: {port}")
    return text


def _port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    if not (low.isdigit() and (high or low).isdigit()):
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH, got {text!r}")
    pair = (int(low), int(high or low))
    if not 0 < pair[0] <= pair[1] < 65536:
        raise argparse.ArgumentTypeError(f"expected 1 <= LOW <= HIGH <= 65535, got {text!r}")
    return pair


def _workers(text: str) -> int:
    from openccs.api.workers import default_workers

    if text == "auto":
        return default_workers()
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected 1 to 64, or auto: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds (0 or more), got {text!r}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from openccs.cloud.host import CloudError
    from openccs.errors import ApiError
    from openccs.log import setup_logging
    from openccs.server import serve

    setup_logging(args.log_level)
    s = settings(args)
    s.http = args.http or None
    s.https = args.https or None
    s.enable_test_actions = args.enable_test_actions
    s.api_workers = args.workers
    s.allow_public_plain_http = args.allow_public_http
    s.allow_privileged = args.allow_privileged
    s.timestamp_window = args.timestamp_window
    s.request_read_timeout = args.request_read_timeout
    s.max_connections_per_client = args.max_connections_per_client
    s.timezone = args.timezone
    s.default_vpc_cidr = args.default_vpc_cidr
    s.node_grace = args.node_grace
    s.machine_disks = args.machine_disks
    s.health_interval = args.health_interval
    s.engine_resync = args.engine_resync
    s.lb_pool = args.lb_pool
    s.node_port_range = args.node_port_range
    s.asg_minute_seconds = args.asg_minute_seconds
    s.asg_scan_interval = args.asg_scan_interval
    s.sample_interval = args.sample_interval
    s.monitor_max_points = args.monitor_max_points
    if args.monitor_retention:
        s.monitor_retention = args.monitor_retention
    s.kube_public_address = args.kube_public_address
    s.console_session_ttl = args.console_session_ttl
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("openccs: give both --tls-cert and --tls-key", file=sys.stderr)
            return 2
        s.tls_cert, s.tls_key = Path(args.tls_cert), Path(args.tls_key)
    try:
        serve(s)
    except (ApiError, CloudError) as exc:
        print(f"openccs: cannot start: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def register(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the API server")
    s.add_argument(
        "--http", type=_listener, default="127.0.0.1:7080", help="HOST:PORT, or '' to disable"
    )
    s.add_argument(
        "--https", type=_listener, default="127.0.0.1:7443", help="HOST:PORT, or '' to disable"
    )
    s.add_argument("--tls-cert", help="operator's certificate (default: generated from local CA)")
    s.add_argument("--tls-key", help="operator's private key")
    s.add_argument("--allow-public-http", action="store_true")
    s.add_argument(
        "--allow-privileged",
        action="store_true",
        help="let services run privileged containers (root on this host: trusted tenants only)",
    )
    s.add_argument("--enable-test-actions", action="store_true", help=argparse.SUPPRESS)
    s.add_argument(
        "--workers",
        type=_workers,
        default="1",
        help="processes serving the API listeners: the main one and N-1 API workers that"
        " run the signed v2 path on more cores (auto: one per core, at most 4; default 1)",
    )
    s.add_argument("--timestamp-window", type=int, default=7200, help="seconds (default 7200)")
    s.add_argument(
        "--request-read-timeout",
        type=_seconds,
        default=10.0,
        help="seconds a client has to send a whole request, else 408 (default 10)",
    )
    s.add_argument(
        "--max-connections-per-client",
        type=int,
        default=128,
        help="connections one client address may hold on a listener (default 128)",
    )
    s.add_argument("--timezone", default="Asia/Shanghai")
    s.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    s.add_argument(
        "--default-vpc-cidr",
        help="the default VPC made at first start (default: 10.0.0.0/16, or the first free"
        " 10.x.0.0/16)",
    )
    s.add_argument(
        "--node-grace",
        type=_seconds,
        default=60.0,
        help="seconds a machine may be not ready before its pods move (default 60)",
    )
    s.add_argument(
        "--machine-disks",
        choices=["dir", "loop"],
        default="dir",
        help="a new machine's disk: a directory of this host (default), or an ext4 file system"
        " of its rootSize on a sparse image, mounted by loop (it fills up like a real disk)",
    )
    s.add_argument(
        "--health-interval", type=_seconds, default=5.0, help="seconds between machine checks"
    )
    s.add_argument(
        "--engine-resync",
        type=_seconds,
        default=1.0,
        help="seconds between a cluster's engine passes when no change wakes it (default 1)",
    )
    s.add_argument(
        "--lb-pool",
        default="198.18.0.0/24",
        help="network the public VIPs of load balancers and ingresses come from",
    )
    s.add_argument(
        "--node-port-range",
        type=_port_range,
        default=(30000, 32767),
        help="LOW-HIGH (default 30000-32767)",
    )
    s.add_argument(
        "--asg-minute-seconds",
        type=_seconds,
        default=60.0,
        help="seconds in one minute of the autoscaler's settings (default 60; shorter for tests)",
    )
    s.add_argument(
        "--asg-scan-interval",
        type=_seconds,
        default=10.0,
        help="seconds between cluster autoscaler passes (default 10)",
    )
    s.add_argument(
        "--sample-interval",
        type=_seconds,
        default=10.0,
        help="seconds between monitor sampling passes (default 10; 0 turns sampling off)",
    )
    s.add_argument(
        "--monitor-retention",
        type=_retention,
        help="how long monitor data is kept, e.g. raw=1h,60=2d,300=15d,3600=62d,86400=400d",
    )
    s.add_argument(
        "--monitor-max-points",
        type=int,
        default=1440,
        help="data points one GetMonitorData request may return (default 1440)",
    )
    s.add_argument(
        "--kube-public-address",
        default="127.0.0.1",
        help="address of the clusters' external Kubernetes API (OperateClusterVip)",
    )
    s.add_argument(
        "--console-session-ttl",
        type=_seconds,
        default=8 * 3600.0,
        help="seconds a web console sign-in lasts (default 8 hours)",
    )
    s.set_defaults(fn=cmd_serve)
