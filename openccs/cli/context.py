"""What every command starts from: the data directory, its store, a signed API client,
and `CliError`, the one way a command says it cannot go on."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from openccs.config import Settings, default_data_dir

# Exit codes: 0 done; 1 the action, its task or a lookup failed (the output says why);
# 2 the command could not run (usage, a bad option value, no server, no credentials);
# 124 --wait gave up (--timeout); 130 interrupted (Ctrl-C).
EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 124, 130


class CliError(Exception):
    """A command that cannot go on: its message, printed as `openccs: ...`, and its exit
    code (2 unless said otherwise)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("OPENCCS_DATA_DIR") or default_data_dir())


def settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=data_dir(args),
        database_url=getattr(args, "database_url", None) or os.environ.get("OPENCCS_DATABASE_URL"),
    )


def open_store(args: argparse.Namespace) -> Any:
    """The data directory's state store and secret box (migrated first)."""
    from openccs.datadir import open_store as open_data_dir

    return open_data_dir(settings(args))


def owners(s: Any) -> dict[int, dict[str, Any]]:
    """Accounts as people name them (appId, uin), by their row id."""
    from sqlalchemy import select

    from openccs.store.models import Account

    return {a.id: {"appId": a.app_id, "uin": a.uin} for a in s.scalars(select(Account))}


def client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="default: the running server of the data directory")
    p.add_argument("--secret-id")
    p.add_argument("--secret-key")
    p.add_argument("--ca", help="CA bundle (default: the data directory's CA)")
    p.add_argument("--region", default="gz")
    p.add_argument("--method", default="POST", choices=["GET", "POST"])
    p.add_argument("--signature-method", default="HmacSHA256", choices=["HmacSHA1", "HmacSHA256"])


def client(args: argparse.Namespace) -> Any:
    """A signed API client for the data directory's server and credentials (or the options)."""
    from openccs.client import Client
    from openccs.datadir import read_endpoints

    where = data_dir(args)
    creds: dict[str, Any] = {}
    cred_path = where / "credentials.json"
    if cred_path.exists():
        creds = json.loads(cred_path.read_text())
    secret_id = args.secret_id or os.environ.get("OPENCCS_SECRET_ID") or creds.get("secretId")
    secret_key = args.secret_key or os.environ.get("OPENCCS_SECRET_KEY") or creds.get("secretKey")
    if not secret_id or not secret_key:
        raise CliError("no credentials (give --secret-id/--secret-key)")
    endpoints = read_endpoints(where)
    endpoint = args.endpoint or endpoints.get("https") or endpoints.get("http")
    if not endpoint:
        raise CliError("no endpoint (give --endpoint, or start openccs serve)")
    ca = args.ca or (str(where / "tls" / "ca.pem") if endpoint.startswith("https") else None)
    return Client(
        endpoint,
        secret_id,
        secret_key,
        ca=ca,
        region=args.region,
        method=args.method,
        signature_method=args.signature_method,
    )
