"""Database engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only a power loss may lose the last
        # commit.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    return on_connect


def make_engine(url: str, pool_size: int = 16, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url`. On SQLite, a writer that finds the database locked waits in
    SQLite's busy handler up to `busy_timeout_ms` (0: it is told at once, and retries as it
    sees fit: `is_locked`)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=False)  # fmt: skip
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True)  # fmt: skip
    return engine


def is_locked(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked" (another connection writes)."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revisions (idempotent, safe at every start).

    Subsystems may add migration branches from a common revision: every head is applied.
    """
    from openccs.components import load_models

    load_models()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


class Store:
    def __init__(self, url: str, auth_epoch: Path | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Sessions carry where to announce changes of credentials (openccs.domain.accounts).
        info = {"auth_epoch": str(auth_epoch)} if auth_epoch else {}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any exception."""
        with self.sessions() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
