"""`openccs`: serve, administer accounts and keys, call the API, check the machine."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from openccs import __version__
from openccs.cli import admin, call, clusters, faults, host, kubeconfig, reports, serve
from openccs.cli.context import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    client_options,
)


class Parser(argparse.ArgumentParser):
    """Usage mistakes in one line, with the way to the command's help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _global_options(p: argparse.ArgumentParser, default: Any) -> None:
    # Given before the command they are the parser's; after it, the command's (its
    # SUPPRESS default leaves the first untouched when the second is not given).
    p.add_argument(
        "--data-dir", default=default, help="state directory (default: the user's data directory)"
    )
    p.add_argument(
        "--database-url",
        default=default,
        help="SQLAlchemy URL (default: SQLite in the data directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="openccs", description=__doc__)
    p.add_argument("--version", action="version", version=f"openccs {__version__}")
    _global_options(p, None)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    serve.register(sub)
    admin.register(sub)
    call.register(sub)
    clusters.register(sub)
    host.register(sub)
    reports.register(sub)
    kubeconfig.add_parser(sub, client_options)
    faults.register(sub, client_options)
    for command in sub.choices.values():
        _global_options(command, argparse.SUPPRESS)
    return p


def _unreachable(exc: Any) -> str:
    try:
        url = exc.request.url
        where = f"{url.scheme}://{url.netloc.decode()}"
    except (AttributeError, RuntimeError):
        where = "the server"
    return f"cannot reach {where}: {exc} (is openccs serve running? see --endpoint)"


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure is one line on standard error and an exit code: 1 the
    action, its task or a lookup failed; 2 the command could not run; 124 --wait gave up;
    130 interrupted. OPENCCS_DEBUG=1 shows the traceback of an unexpected error."""
    import httpx

    from openccs.domain.accounts import AccountError

    try:
        args = build_parser().parse_args(argv)
        return int(args.fn(args))
    except AccountError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except httpx.HTTPStatusError as exc:
        return _fail(f"the server answered {exc.response.status_code}: {exc}", EXIT_FAILED)
    except httpx.TransportError as exc:
        return _fail(_unreachable(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        if os.environ.get("OPENCCS_DEBUG"):
            raise
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_USAGE)


def _fail(message: str, code: int) -> int:
    print(f"openccs: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
