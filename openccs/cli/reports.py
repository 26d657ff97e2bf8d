"""Reports from the state store and the code: what the cluster autoscaler has and decided
(`openccs asg`), and which actions are covered (`openccs coverage`)."""

from __future__ import annotations

import argparse
from typing import Any

from openccs.cli.context import EXIT_FAILED, CliError, open_store
from openccs.cli.output import output_option, print_rows


def cmd_asg(args: argparse.Namespace) -> int:
    """A cluster's autoscaling groups, or what its autoscaler decided (events)."""
    from openccs.autoscaler.report import asg_events, asg_groups

    store, _ = open_store(args)
    with store.session() as s:
        rows = asg_groups(s, args.cluster) if args.op == "ls" else asg_events(s, args.cluster)
    if rows is None:
        raise CliError(f"no cluster {args.cluster!r}", EXIT_FAILED)
    print_rows(args, rows)
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from openccs.coverage import coverage_markdown

    print(coverage_markdown(), end="")
    return 0


def register(sub: Any) -> None:
    g = sub.add_parser("asg", help="autoscaling groups: openccs asg ls|events CLUSTER")
    g.add_argument("op", choices=["ls", "events"])
    g.add_argument("cluster")
    output_option(g)
    g.set_defaults(fn=cmd_asg)

    v = sub.add_parser("coverage", help="print the action coverage table (Markdown)")
    v.set_defaults(fn=cmd_coverage)
