"""Where a model function runs: the one place that knows how to talk to SQLite and PostgreSQL.

Model functions are plain synchronous code, `fn(session, *args) -> result`. Code on the event loop never
touches a connection; it awaits `db.read(fn, ...)` or `db.write(fn, ...)` and the call runs elsewhere:

- SQLite writes go to ONE writer thread. It takes every write waiting in its queue (group commit), runs each
  in its own SAVEPOINT (an exception rolls back that call only), COMMITs once and only then resolves the
  callers' futures. One fsync per batch makes `synchronous=FULL` cheap, so a reply never announces what a
  power cut could undo. Within one process SQLite's single-writer rule is therefore a queue, not a lock wait;
  across processes BEGIN IMMEDIATE plus busy_timeout makes the other process wait in its own writer thread.
- SQLite reads run on reader threads over `query_only` connections in a short deferred transaction (one WAL
  snapshot for the whole call): a read can never write, and never waits for a writer.
- PostgreSQL: a pool of worker threads with psycopg 3 connections, one transaction per call, reads in READ
  ONLY transactions. Nothing assumes a single writer: money-like changes are conditional UPDATEs and
  UNIQUE constraints, which hold across any number of workers and processes.

Code that is not on the event loop (the CLI, tests, the threads above) uses the context managers
`db.writing()` and `db.reading()` directly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from config import sync_url

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelFn = Callable[..., T]

# Reader threads (and reader connections) on SQLite; worker threads (and connections) on PostgreSQL.
SQLITE_READERS = 2
PG_WORKERS = 8
# The most writes one group commit takes from the queue; a storm is cut into batches of this size.
BATCH_MAX = 256
SYNCHRONOUS = "FULL"


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file database (a fresh clone has no data/); nothing for other URLs."""
    parsed = make_url(sync_url(url))
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int, *, reader: bool) -> None:
    """SQLAlchemy's documented recipe: take over transaction control from pysqlite."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if reader:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

    @event.listens_for(engine, "reset")
    def on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # A failed COMMIT (a deferred foreign key, SQLITE_BUSY) leaves SQLite's transaction open, yet SQLAlchemy
        # counts it as ended and skips its rollback-on-return: the pooled connection would fail every later BEGIN.
        if dbapi_connection.in_transaction:
            dbapi_connection.rollback()


@dataclass
class _Job:
    """One write waiting for the writer thread, and the future its caller awaits."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()

    def settle(self, ok: bool, value: Any) -> None:
        """Resolve the caller's future from the writer thread (the loop may already be gone)."""
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, ok, value)
        except RuntimeError:
            log.warning("a write finished after its event loop closed")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


_STOP = object()


class GroupCommitWriter:
    """The one SQLite writer thread: every waiting write in one transaction, a SAVEPOINT each, one COMMIT."""

    def __init__(self, engine: Engine, batch_max: int = BATCH_MAX) -> None:
        self.engine = engine
        self.batch_max = batch_max
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.batches = 0
        self.thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self.thread.start()

    def submit(self, job: _Job) -> None:
        """Queue a write; its future resolves after the COMMIT of its batch."""
        self.queue.put(job)

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self.queue.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            batch, stop = [first], False
            while len(batch) < self.batch_max:
                try:
                    job = self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.begin()
                for job in batch:
                    try:
                        with session.begin_nested():
                            outcomes.append((True, job.fn(session, *job.args, **job.kwargs)))
                    except Exception as exc:
                        # The savepoint is rolled back: this call only; the rest of the batch commits.
                        outcomes.append((False, exc))
                session.commit()
            self.batches += 1
        except Exception as exc:
            # The transaction itself failed (COMMIT, a lost connection): nothing of the batch was kept.
            log.exception("a write batch of %d failed as a whole", len(batch))
            for job in batch:
                job.settle(False, exc)
            return
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            job.settle(ok, value)


def notify(session: Session, channel: str, payload: str) -> None:
    """Tell every process listening on this channel, when (and only if) the transaction commits.

    PostgreSQL NOTIFY; nothing on SQLite, where one bot process owns the database.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


LISTEN_POLL_SECONDS = 1.0
LISTEN_RETRY_SECONDS = 2.0


class Database:
    """Engines, the SQLite writer thread and the worker threads; `read`/`write` run model functions there.

    Every engine hides SQL parameters (hide_parameters=True): a logged traceback must not carry names, employee
    numbers or message texts.
    """

    def __init__(
        self,
        url: str,
        busy_timeout_ms: int = 5000,
        echo: bool = False,
        *,
        pg_workers: int = PG_WORKERS,
        sqlite_readers: int = SQLITE_READERS,
    ) -> None:
        self.url = make_url(sync_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._writer: GroupCommitWriter | None = None
        self._lock = threading.Lock()
        if self.is_sqlite:
            memory = (self.url.database or "") in ("", ":memory:")
            ensure_sqlite_dir(url)
            args = {"check_same_thread": False}
            if memory:
                # One shared connection: every "connection" must see the same in-memory database.
                self.write_engine = create_engine(
                    self.url, echo=echo, poolclass=StaticPool, connect_args=args, hide_parameters=True
                )
                _sqlite_pragmas(self.write_engine, busy_timeout_ms, reader=False)
                self.read_engine = self.write_engine
            else:
                self.write_engine = create_engine(
                    self.url, echo=echo, pool_size=2, connect_args=args, hide_parameters=True
                )
                self.read_engine = create_engine(
                    self.url, echo=echo, pool_size=sqlite_readers, connect_args=args, hide_parameters=True
                )
                _sqlite_pragmas(self.write_engine, busy_timeout_ms, reader=False)
                _sqlite_pragmas(self.read_engine, busy_timeout_ms, reader=True)
            self._threads = (sqlite_readers, "sqlite-reader")
        else:
            self.write_engine = create_engine(
                self.url,
                echo=echo,
                pool_size=pg_workers,
                max_overflow=pg_workers,
                pool_pre_ping=True,
                hide_parameters=True,
            )
            self.read_engine = self.write_engine.execution_options(postgresql_readonly=True)
            self._threads = (pg_workers, "pg-worker")
        self._pool: ThreadPoolExecutor | None = None
        self._closing = threading.Event()
        self._listeners: list[threading.Thread] = []

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.url.get_backend_name()

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        database = self.url.database or ""
        if not self.is_sqlite or database in ("", ":memory:"):
            return None
        return Path(database)

    # --- off the event loop: the CLI, tests and the threads below -------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction in the calling thread: committed when the block ends, rolled back on error.

        Never call this on the event loop: on SQLite it may wait for another writer's lock.
        """
        with Session(self.write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One read-only transaction (one snapshot) in the calling thread."""
        with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    # --- on the event loop -------------------------------------------------------------------------------

    async def write(self, fn: ModelFn[T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, *args, **kwargs)` as one atomic write; returns after it is committed."""
        if self.is_sqlite:
            job = _Job(fn, args, kwargs, asyncio.get_running_loop())
            self._writer_thread().submit(job)
            return await job.future
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker_pool(), self._call, self.writing, fn, args, kwargs)

    async def read(self, fn: ModelFn[T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, *args, **kwargs)` in a read-only transaction; it can never write."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker_pool(), self._call, self.reading, fn, args, kwargs)

    @staticmethod
    def _call(scope: Callable[[], Any], fn: ModelFn[T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with scope() as session:
            return fn(session, *args, **kwargs)

    def _writer_thread(self) -> GroupCommitWriter:
        with self._lock:
            if self._writer is None:
                self._writer = GroupCommitWriter(self.write_engine)
            return self._writer

    def listen(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Call `callback(payload)` for every NOTIFY on the channel, from a thread of its own (PostgreSQL only).

        After (re)connecting it calls `callback(None)`: notifications sent while it was not listening are lost,
        so whatever they would have invalidated must be invalidated as a whole.
        """
        if self.is_sqlite:
            return
        self._closing.clear()
        thread = threading.Thread(target=self._listen, args=(channel, callback), name=f"listen-{channel}", daemon=True)
        thread.start()
        self._listeners.append(thread)

    def _listen(self, channel: str, callback: Callable[[str | None], None]) -> None:
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._closing.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    callback(None)
                    while not self._closing.is_set():
                        for note in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            callback(note.payload)
            except Exception as exc:  # the listener must outlive a restart of the database server
                if self._closing.is_set():
                    return
                log.warning("LISTEN %s lost its connection (%s); reconnecting", channel, type(exc).__name__)
                self._closing.wait(LISTEN_RETRY_SECONDS)

    def _worker_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                workers, name = self._threads
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
            return self._pool

    @property
    def batches(self) -> int:
        """Group commits done by the SQLite writer so far (benchmarks report writes per batch)."""
        return self._writer.batches if self._writer is not None else 0

    async def dispose(self) -> None:
        """Finish queued writes, stop the threads and close every pooled connection (all restart on next use)."""
        with self._lock:
            writer, self._writer = self._writer, None
            pool, self._pool = self._pool, None
        if writer is not None:
            await asyncio.to_thread(writer.stop)
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)
        self._closing.set()
        listeners, self._listeners = self._listeners, []
        for thread in listeners:
            await asyncio.to_thread(thread.join)
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
