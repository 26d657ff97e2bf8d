"""`openccs call ACTION name=value ...`: one signed call; with `--wait`, the task it
started followed to its end. Standard output keeps the answer and the task's steps (for
scripts); standard error shows the task's state and the time gone as it runs."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from openccs.cli.context import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    CliError,
    client,
    client_options,
)
from openccs.cli.output import print_data_table, print_json

POLL = 0.5
# Off a terminal, the state line is repeated at least this often while nothing changes.
QUIET_LINE_EVERY = 10.0


def parse_kv(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"call: expected name=value, got {pair!r}")
        params[name] = value
    return params


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text!r}")
    return value


def wait_options(p: argparse.ArgumentParser, flag: bool) -> None:
    """`--wait` (when waiting is not the command's default) and `--timeout`."""
    if flag:
        p.add_argument("--wait", action="store_true", help="follow the returned requestId")
    p.add_argument(
        "--timeout",
        type=_timeout,
        help="seconds to follow the task; then exit 124 (the task goes on)",
    )


def cmd_call(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        raise CliError("--timeout goes with --wait")
    api = client(args)
    result = api.call(args.action, parse_kv(args.params))
    return answer(api, result, wait=args.wait, timeout=args.timeout, table=args.output == "table")


def answer(
    api: Any, result: dict[str, Any], wait: bool, timeout: float | None = None, table: bool = False
) -> int:
    """Print an action's answer; with `wait`, then follow the task it started to its end.
    Exit code 0 only when the action (and its task) succeeded."""
    if table and result.get("code") == 0:
        print_data_table(result.get("data"))
    else:
        print_json(result)
    if result.get("code") != 0:
        return EXIT_FAILED
    data = result.get("data")
    request_id = data.get("requestId") if isinstance(data, dict) else None
    if wait and request_id:
        return follow(api, int(request_id), timeout)
    return 0


class StateLine:
    """The task's state on standard error: one line rewritten in place on a terminal,
    else a line when the state changes (and every QUIET_LINE_EVERY s while it does not)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = ""
        self.last: tuple[str, float] = ("", 0.0)

    def show(self, state: str, elapsed: float) -> None:
        text = f"{state}, {elapsed:.1f} s"
        if self.tty:
            self.clear()
            self.stream.write(text)
            self.shown = text
        elif state != self.last[0] or elapsed - self.last[1] >= QUIET_LINE_EVERY:
            self.stream.write(text + "\n")
            self.last = (state, elapsed)
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = ""

    def say(self, text: str) -> None:
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()


def _state(request_id: int, data: dict[str, Any]) -> str:
    steps = data.get("steps") or []
    done = sum(1 for s in steps if s["status"] == "done")
    running = next((s["name"] for s in steps if s["status"] == "running"), None)
    text = f"task {request_id}: {data['status']}, {done}/{len(steps)} steps done"
    return text + (f", now {running}" if running else "")


def follow(api: Any, request_id: int, timeout: float | None = None) -> int:
    """Follow a task until it ends, printing each step as it completes; give up after
    `timeout` seconds (exit 124), or at Ctrl-C (exit 130): the task goes on either way."""
    line = StateLine(sys.stderr)
    started = time.monotonic()
    shown: set[str] = set()
    seen: set[tuple[str, str]] = set()
    again = f"openccs call DescribeClusterTaskResult requestId={request_id} --wait"
    try:
        while True:
            res = api.call("DescribeClusterTaskResult", {"requestId": request_id})
            elapsed = time.monotonic() - started
            if res.get("code") != 0:
                line.clear()
                print_json(res)
                return EXIT_FAILED
            data = res["data"]
            news = []
            for item, status in data.get("progress", {}).items():
                if (item, status) not in seen:
                    seen.add((item, status))
                    news.append(f"  {item}  {status}")
            for step in data.get("steps", []):
                if step["status"] == "done" and step["name"] not in shown:
                    shown.add(step["name"])
                    news.append(f"  done  {step['name']}")
            if news:
                line.clear()
                print("\n".join(news), flush=True)
            if data["status"] != "running":
                line.say(f"task {request_id} ended after {elapsed:.1f} s")
                print(f"task {request_id}: {data['status']} {data.get('reason') or ''}".rstrip())
                return 0 if data["status"] == "succ" else EXIT_FAILED
            line.show(_state(request_id, data), elapsed)
            if timeout is not None and elapsed >= timeout:
                line.clear()
                raise CliError(
                    f"task {request_id} still running after {timeout:g} s; it goes on"
                    f" (follow it again: {again})",
                    EXIT_TIMEOUT,
                )
            pause = POLL if timeout is None else min(POLL, max(0.0, timeout - elapsed))
            time.sleep(pause)
    except KeyboardInterrupt:
        line.clear()
        raise CliError(
            f"interrupted; task {request_id} goes on (follow it again: {again})",
            EXIT_INTERRUPTED,
        ) from None


def register(sub: Any) -> None:
    c = sub.add_parser("call", help="call an action: openccs call ACTION name=value ...")
    c.add_argument("action")
    c.add_argument("params", nargs="*")
    client_options(c)
    c.add_argument(
        "-o",
        "--output",
        choices=["json", "table"],
        default="json",
        help="the answer as JSON (default) or its data as a table",
    )
    c.add_argument(
        "--table", dest="output", action="store_const", const="table", help="same as -o table"
    )
    wait_options(c, flag=True)
    c.set_defaults(fn=cmd_call)
