"""One leader among the bot's processes: the one that sends the outbox and runs scheduled work.

Every process handles updates; exactly one at a time sends queued messages (so Telegram's global rate holds
across processes) and runs timed work. The leader is elected through the database:

- PostgreSQL: a session-level advisory lock held on a connection of its own. When the leader dies, the server
  drops its connection and with it the lock; another process takes it at its next try (every RETRY_SECONDS).
  The leader checks its connection every CHECK_SECONDS and steps down when it is gone.
- SQLite: an exclusive lock (flock) on a file beside the database; the kernel releases it when the process
  dies. SQLite serves one machine, so a file lock is the database's lock here.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from pathlib import Path
from typing import IO

import psycopg

from models.db import Database

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: "gongshe\0" as a 64-bit integer, so no other application picks it by chance.
LEADER_KEY = int.from_bytes(b"gongshe\0", "big") >> 1
RETRY_SECONDS = 2.0
CHECK_SECONDS = 1.0


class Leadership:
    """Tries to become the leader in a thread of its own, and keeps `is_leader` true while it is."""

    def __init__(self, db: Database, retry_seconds: float = RETRY_SECONDS) -> None:
        self.db = db
        self.retry_seconds = retry_seconds
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """True while this process holds the lock."""
        return self._leader.is_set()

    def start(self) -> None:
        """Start trying (an in-memory SQLite database has one process by definition: it leads at once)."""
        if self.db.is_sqlite and self.db.sqlite_path is None:
            self._leader.set()
            return
        self._stop.clear()
        target = self._run_sqlite if self.db.is_sqlite else self._run_postgresql
        self._thread = threading.Thread(target=target, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Step down and end the thread (the lock is released with its connection or file)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._leader.clear()

    def _became(self, leader: bool) -> None:
        if leader and not self._leader.is_set():
            log.info("this process is now the leader: it sends the outbox and runs scheduled work")
            self._leader.set()
        elif not leader and self._leader.is_set():
            log.warning("this process is no longer the leader")
            self._leader.clear()

    def _run_postgresql(self) -> None:
        conninfo = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    while not self._stop.is_set():
                        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)).fetchone()[0]
                        if not got:
                            self._stop.wait(self.retry_seconds)
                            continue
                        self._became(True)
                        while not self._stop.wait(CHECK_SECONDS):
                            conn.execute("SELECT 1")
            except Exception as exc:  # the connection is gone: so is the lock
                if not self._stop.is_set():
                    log.warning("leader election lost its connection (%s)", type(exc).__name__)
            self._became(False)
            self._stop.wait(self.retry_seconds)

    def _run_sqlite(self) -> None:
        path = Path(f"{self.db.sqlite_path}.leader")
        handle: IO[bytes] | None = None
        try:
            handle = path.open("ab")
            while not self._stop.is_set():
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._stop.wait(self.retry_seconds)
                    continue
                self._became(True)
                self._stop.wait()
        finally:
            self._became(False)
            if handle is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
