"""Engines and sessions: the one place that knows how to talk to SQLite and PostgreSQL.

Every database call is async (aiosqlite / asyncpg) so a writer waiting for a lock never freezes the
event loop. SQLite gets two engines on the same file: readers run on a pool of connections without an
explicit transaction (each SELECT sees a consistent WAL snapshot and never waits), while writers share a
single connection that starts every transaction with BEGIN IMMEDIATE. In one process, writers therefore
queue on the asyncio pool instead of spinning in SQLite's busy handler; across processes, BEGIN IMMEDIATE
plus busy_timeout makes the second writer wait instead of failing with "database is locked".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

# Readers on SQLite: enough connections for the concurrent updates a bot handles at once.
SQLITE_READ_POOL = 8
# How long an update may wait for the shared writer connection before giving up (seconds).
WRITE_QUEUE_TIMEOUT = 120


def _sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int, begin: str | None) -> None:
    """SQLAlchemy's documented recipe: take over transaction control from pysqlite."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if begin is None:
        return

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file database (a fresh clone has no data/); nothing for other URLs."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Async engines and the two kinds of transaction a caller can ask for: read or write."""

    def __init__(self, url: str, busy_timeout_ms: int = 5000, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            memory = (self.url.database or "") in ("", ":memory:")
            ensure_sqlite_dir(url)
            if memory:
                # One shared connection: every "connection" must see the same in-memory database.
                self.write_engine = create_async_engine(url, echo=echo, poolclass=StaticPool)
                self.read_engine = self.write_engine
            else:
                self.write_engine = create_async_engine(
                    url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=WRITE_QUEUE_TIMEOUT
                )
                self.read_engine = create_async_engine(
                    url, echo=echo, pool_size=SQLITE_READ_POOL, max_overflow=0, pool_timeout=WRITE_QUEUE_TIMEOUT
                )
            _sqlite_pragmas(self.write_engine, busy_timeout_ms, "BEGIN IMMEDIATE")
            if self.read_engine is not self.write_engine:
                # Readers run without an explicit transaction: in WAL mode each SELECT reads a consistent
                # snapshot and never waits for a writer, and skipping BEGIN saves driver round trips on
                # every update (measured with bench/updates.py). A handler that must act on what it
                # read calls ctx.require_write() and runs again inside a write transaction.
                _sqlite_pragmas(self.read_engine, busy_timeout_ms, None)
        else:
            self.write_engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.read_engine = self.write_engine
        self._write = async_sessionmaker(self.write_engine, class_=AsyncSession, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.url.get_backend_name()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """One read session (on SQLite: the reader pool, autocommit SELECTs that never wait for writers).

        It ends with a COMMIT of nothing rather than a ROLLBACK, so loaded objects stay usable afterwards.
        """
        async with self._read() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        database = self.url.database or ""
        if not self.is_sqlite or database in ("", ":memory:"):
            return None
        return Path(database)
