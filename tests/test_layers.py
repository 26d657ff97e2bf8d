"""The layers' rules, checked on the source: what each layer may import.

- The v2 actions decode, call the domain, encode: no SQLAlchemy (queries live in the domain
  modules), no subprocess or socket (slow I/O runs in the domain, outside the request's
  transaction, see `RequestContext.outside`).
- Nothing below the wire layer imports it: errors live at the bottom (`openccs.errors`).
- The domain imports no front end (`openccs.kube`, `openccs.console`): what a cluster's
  endpoint needs lives below (`domain/endpoints.py`, the store's `KubeEndpoint`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from openccs.api.context import RequestContext

PACKAGE = Path(__file__).resolve().parent.parent / "openccs"

# Modules that talk to processes or the network.
SLOW_IO = ("subprocess", "socket", "httpx", "urllib.request", "http.client", "requests", "docker")

# Front ends above the wire layer: they call `api.app.execute` (one path for authorization).
# (client.py signs v2 calls; coverage.py reports the catalog's actions for the README.)
WIRE_USERS = {
    "api",
    "actions",
    "console",
    "cli",
    "kube",
    "server.py",
    "components.py",
    "client.py",
    "coverage.py",
}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (also inside functions), absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_imports_of_reads_relative_and_nested_imports(tmp_path: Path) -> None:
    # The checker itself must see what it checks.
    mod = PACKAGE / "registry" / "domain.py"
    names = imports_of(mod)
    assert "sqlalchemy" in {_top(n) for n in names}
    assert "openccs.registry.models" in names  # `from .models import ...`
    assert "openccs.errors" in names


@pytest.mark.parametrize("path", sorted((PACKAGE / "actions").glob("*.py")), ids=lambda p: p.name)
def test_actions_open_no_socket_subprocess_or_database_query(path: Path) -> None:
    names = imports_of(path)
    io = sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in SLOW_IO))
    assert not io, f"{path.name}: slow I/O belongs in the domain, run outside the transaction"
    assert "sqlalchemy" not in {_top(n) for n in names}, (
        f"{path.name}: queries belong in the backends and domain modules"
    )


def _below_api() -> list[Path]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] not in WIRE_USERS:
            out.append(path)
    return out


@pytest.mark.parametrize("path", _below_api(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_below_the_wire_layer_imports_it(path: Path) -> None:
    wire = sorted(n for n in imports_of(path) if n == "openccs.api" or n.startswith("openccs.api."))
    assert not wire, f"{path.relative_to(PACKAGE)} imports {wire}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_no_front_end(path: Path) -> None:
    front = ("openccs.kube", "openccs.console")
    found = sorted(
        n for n in imports_of(path) if any(n == f or n.startswith(f + ".") for f in front)
    )
    assert not found, f"domain/{path.name} imports {found}"


def test_the_context_refuses_the_database_inside_outside(tmp_path: Path) -> None:
    """`ctx.outside()` (the request's `Work.outside()`) ends the reading transaction; the work
    may not use the database, and a reading half that wrote is a programming error (its write
    would be half of a request)."""
    from sqlalchemy import column, insert, table, text

    from openccs.domain.accounts import Caller
    from openccs.store.db import Store
    from openccs.store.models import Quota

    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    caller = Caller(
        account_id=1,
        app_id=1,
        uin="1",
        account_enabled=True,
        secret_id="k",
        secret_key="",
        key_enabled=True,
    )
    try:
        with store.sessions() as s:
            ctx = RequestContext("r", "Test", "", caller, s, services=None)  # type: ignore[arg-type]
            assert s.execute(text("select 1")).scalar() == 1
            with ctx.outside():
                assert not s.in_transaction()
                with pytest.raises(RuntimeError, match=r"inside Work\.outside"):
                    s.execute(text("select 1"))
            # The writing half begins a new transaction.
            s.execute(text("create table t (x int)"))
            s.execute(text("insert into t values (1)"))
            s.commit()
        with store.sessions() as s:
            ctx = RequestContext("r", "Test", "", caller, s, services=None)  # type: ignore[arg-type]
            s.execute(insert(table("t", column("x"))).values(x=2))
            with pytest.raises(RuntimeError, match="after a write"), ctx.outside():
                pass
            s.rollback()
        with store.sessions() as s:
            ctx = RequestContext("r", "Test", "", caller, s, services=None)  # type: ignore[arg-type]
            s.add(Quota(account_id=1, name="ccrTriggers", value=3))
            with pytest.raises(RuntimeError, match="after a write"), ctx.outside():
                pass
    finally:
        store.dispose()
