"""Administration straight on the state store: accounts and quotas, keys, sub-accounts,
console passwords, ingress certificates, metrics tokens, official registry namespaces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from openccs.cli.context import EXIT_FAILED, CliError, open_store, owners
from openccs.cli.output import output_option, print_record, print_rows


def _read_password() -> str:
    """A console password: asked twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("console password: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_account(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.console.auth import set_password
    from openccs.domain import accounts as acc
    from openccs.store.models import Account

    store, box = open_store(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.create_account(s, name=args.name or "")
            out: dict[str, Any] = {"appId": a.app_id, "uin": a.uin, "name": a.name}
            if not args.no_key:
                k = acc.create_key(s, box, a)
                out.update(secretId=k.secret_id, secretKey=k.secret_key)
            print_record(args, out)
        elif args.op == "ls":
            rows = [
                {"appId": a.app_id, "uin": a.uin, "name": a.name, "enabled": a.enabled}
                for a in s.scalars(select(Account).order_by(Account.id))
            ]
            print_rows(args, rows)
        elif args.op in ("disable", "enable"):
            acc.get_account(s, args.account).enabled = args.op == "enable"
        elif args.op == "quota":
            a = acc.get_account(s, args.account)
            if args.name_value:
                if len(args.name_value) != 2 or not args.name_value[1].lstrip("-").isdigit():
                    raise acc.AccountError("usage: account quota ACCOUNT [NAME VALUE]")
                acc.set_quota(s, a.id, args.name_value[0], int(args.name_value[1]))
            rows = [{"quota": k, "value": v} for k, v in acc.all_quotas(s, a.id).items()]
            print_rows(args, rows)
        elif args.op == "password":
            uin = set_password(s, args.account or "", _read_password(), subuser=False)
            print(f"console password set for {uin}")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.domain import accounts as acc
    from openccs.store.models import ApiKey, SubUser

    store, box = open_store(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.get_account(s, args.ref)
            sub = acc.get_subuser(s, args.subuser) if args.subuser else None
            if sub is not None and sub.account_id != a.id:
                raise acc.AccountError(f"sub-account {args.subuser} is not {a.uin}'s")
            k = acc.create_key(s, box, a, sub)
            print_record(args, {"secretId": k.secret_id, "secretKey": k.secret_key})
        elif args.op == "ls":
            q = select(ApiKey, SubUser.uin).outerjoin(SubUser, SubUser.id == ApiKey.subuser_id)
            if args.ref:
                q = q.where(ApiKey.account_id == acc.get_account(s, args.ref).id)
            who = owners(s)
            rows = [
                {
                    "secretId": k.secret_id,
                    **who[k.account_id],
                    "subuser": sub_uin or "",
                    "enabled": k.enabled,
                }
                for k, sub_uin in s.execute(q)
            ]
            print_rows(args, rows)
        elif args.op in ("disable", "enable"):
            acc.set_key_enabled(s, args.ref, args.op == "enable")
        elif args.op == "delete":
            acc.delete_key(s, args.ref)
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    """Server certificates for HTTPS ingress rules (the ingress's certId)."""
    from sqlalchemy import select

    from openccs.domain import accounts as acc
    from openccs.timeutil import fmt_time_zoned
    from openccs.traffic.models import Certificate

    store, box = open_store(args)
    with store.session() as s:
        if args.op == "upload":
            if not (args.ref and args.cert and args.key):
                raise acc.AccountError("give the account, --cert FILE and --key FILE")
            account = acc.get_account(s, args.ref)
            row = _certificate(account.id, Path(args.cert), Path(args.key), args.name, box)
            s.add(row)
            s.flush()
            print_record(args, {"certId": row.id})
        elif args.op == "ls":
            q = select(Certificate).order_by(Certificate.created_at)
            if args.ref:
                q = q.where(Certificate.account_id == acc.get_account(s, args.ref).id)
            who = owners(s)
            rows = [
                {"certId": c.id, **who[c.account_id], "name": c.name,
                 "createdAt": fmt_time_zoned(c.created_at)}
                for c in s.scalars(q)
            ]  # fmt: skip
            print_rows(args, rows)
        elif args.op == "delete":
            row = s.get(Certificate, args.ref)
            if row is None:
                raise acc.AccountError(f"no certificate {args.ref!r}")
            s.delete(row)
    return 0


def _certificate(account_id: int, cert: Path, key: Path, name: str | None, box: Any) -> Any:
    """A certificate row from a PEM chain and the key of its first certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from openccs.domain.accounts import AccountError
    from openccs.ids import new_id
    from openccs.traffic.models import Certificate

    chain, key_text = cert.read_text(), key.read_text()
    try:
        certs = x509.load_pem_x509_certificates(chain.encode())
        private = serialization.load_pem_private_key(key_text.encode(), password=None)
    except ValueError as exc:
        raise AccountError(f"not a PEM certificate chain and key: {exc}") from None
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(der, spki) != certs[0].public_key().public_bytes(
        der, spki
    ):
        raise AccountError("the key does not belong to the first certificate")
    return Certificate(
        id=new_id("cert"),
        account_id=account_id,
        name=name or certs[0].subject.rfc4514_string()[:128],
        cert_pem=chain,
        key_enc=box.encrypt(key_text),
    )


def cmd_subuser(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from openccs.console.auth import set_password
    from openccs.domain import accounts as acc
    from openccs.store.models import SubUser

    store, box = open_store(args)
    with store.session() as s:
        if args.op == "create":
            a = acc.get_account(s, args.ref)
            sub = acc.create_subuser(s, a, args.name or "", args.action, args.resource)
            out: dict[str, Any] = {"uin": sub.uin, "name": sub.name}
            if not args.no_key:
                k = acc.create_key(s, box, a, sub)
                out.update(secretId=k.secret_id, secretKey=k.secret_key)
            print_record(args, out)
        elif args.op == "ls":
            q = select(SubUser)
            if args.ref:
                q = q.where(SubUser.account_id == acc.get_account(s, args.ref).id)
            rows = [
                {
                    "uin": u.uin,
                    "name": u.name,
                    "actions": u.allowed_actions,
                    "resources": u.allowed_resources,
                }
                for u in s.scalars(q)
            ]
            print_rows(args, rows)
        elif args.op in ("allow", "revoke"):
            sub = acc.get_subuser(s, args.ref)
            actions, resources = list(sub.allowed_actions), list(sub.allowed_resources)
            for lst, new in ((actions, args.action or []), (resources, args.resource or [])):
                for item in new:
                    if args.op == "allow" and item not in lst:
                        lst.append(item)
                    elif args.op == "revoke" and item in lst:
                        lst.remove(item)
            sub.allowed_actions, sub.allowed_resources = actions, resources
        elif args.op == "password":
            uin = set_password(s, args.ref or "", _read_password(), subuser=True)
            print(f"console password set for {uin}")
    return 0


def cmd_metrics_token(args: argparse.Namespace) -> int:
    from openccs.monitor import prometheus

    store, _box = open_store(args)
    with store.session() as s:
        if args.op == "create":
            token_id, token = prometheus.create_token(s, args.note or "")
            print_record(args, {"id": token_id, "token": token})
        elif args.op == "ls":
            print_rows(args, [prometheus.token_row_view(t) for t in prometheus.list_tokens(s)])
        elif args.op == "revoke" and not (args.id and prometheus.revoke_token(s, args.id)):
            print(f"openccs: no metrics token {args.id!r}", file=sys.stderr)
            return EXIT_FAILED
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from openccs.registry.domain import namespace_by_name

    store, _box = open_store(args)
    with store.session() as s:
        ns = namespace_by_name(s, args.namespace)
        if ns is None:
            print(f"openccs: no registry namespace {args.namespace!r}", file=sys.stderr)
            return EXIT_FAILED
        ns.official = args.op == "official"
    return 0


def register(sub: Any) -> None:
    a = sub.add_parser("account", help="accounts and quotas")
    a.add_argument("op", choices=["create", "ls", "disable", "enable", "quota", "password"])
    a.add_argument("account", nargs="?", help="appId, uin or name")
    a.add_argument("name_value", nargs="*", help="with quota: NAME VALUE")
    a.add_argument("--name")
    a.add_argument("--no-key", action="store_true", help="create without a key")
    output_option(a)
    a.set_defaults(fn=cmd_account)

    k = sub.add_parser("key", help="SecretId/SecretKey pairs")
    k.add_argument("op", choices=["create", "ls", "disable", "enable", "delete"])
    k.add_argument("ref", nargs="?", help="account (create, ls) or SecretId")
    k.add_argument("--subuser", help="with create: the key is this sub-account's")
    output_option(k)
    k.set_defaults(fn=cmd_key)

    u = sub.add_parser("subuser", help="sub-accounts and their allow-lists")
    u.add_argument("op", choices=["create", "ls", "allow", "revoke", "password"])
    u.add_argument("ref", nargs="?", help="account (create, ls) or sub-account uin/name")
    u.add_argument("--name")
    u.add_argument("--action", action="append", help="allowed action (repeat; * for all)")
    u.add_argument("--resource", action="append", help="allowed resource id or pattern (cls-*)")
    u.add_argument("--no-key", action="store_true")
    output_option(u)
    u.set_defaults(fn=cmd_subuser)

    ce = sub.add_parser("cert", help="certificates for HTTPS ingress (certId)")
    ce.add_argument("op", choices=["upload", "ls", "delete"])
    ce.add_argument("ref", nargs="?", help="account (upload, ls) or certificate id (delete)")
    ce.add_argument("--cert", help="PEM certificate chain, the server's certificate first")
    ce.add_argument("--key", help="PEM private key of that certificate")
    ce.add_argument("--name")
    output_option(ce)
    ce.set_defaults(fn=cmd_cert)

    mt = sub.add_parser("metrics-token", help="bearer tokens for /metrics (Prometheus)")
    mt.add_argument("op", choices=["create", "ls", "revoke"])
    mt.add_argument("id", nargs="?", help="with revoke: the token's id (mtk-...)")
    mt.add_argument("--note", help="with create: what the token is for")
    output_option(mt)
    mt.set_defaults(fn=cmd_metrics_token)

    r = sub.add_parser("registry", help="image registry: mark namespaces official")
    r.add_argument("op", choices=["official", "unofficial"])
    r.add_argument("namespace")
    r.set_defaults(fn=cmd_registry)
