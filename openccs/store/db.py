"""Database engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process; only a power loss may lose the last commit.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=False)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=True)
    return engine


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
