"""A separate OS process that books counselling slots for many members at once (used by tests/test_care_models.py).

Usage: python -m tests.care_book_worker DATABASE_URL NOW_ISO MEMBER_ID:SLOT_ID,MEMBER_ID:SLOT_ID,...
Prints "ready" once its own engine is connected, waits for a line on stdin (the go signal shared by all
workers), books every pair concurrently and prints one JSON object: outcome -> count.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import datetime

import models  # noqa: F401  (registers every table)
from models.care import counselling
from models.db import Database
from models.errors import DomainError
from models.members import Member

CONNECTIONS = 8
LIMIT = 2


async def book_one(db: Database, member_id: int, slot_id: int, now: datetime) -> str:
    """One booking in its own transaction on a worker thread: 'created' or the domain error's key."""
    try:
        await db.write(counselling.book, member_id, slot_id, "career", now, LIMIT, None, None)
        return "created"
    except DomainError as exc:
        return exc.key


async def main(url: str, now: datetime, pairs: list[tuple[int, int]]) -> dict[str, int]:
    """Connect, wait for the go signal, book every pair concurrently, count the outcomes."""
    db = Database(url, pg_workers=CONNECTIONS)
    try:
        with db.reading() as session:
            session.get(Member, pairs[0][0])
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcomes = await asyncio.gather(*(book_one(db, m, s, now) for m, s in pairs))
        return dict(Counter(outcomes))
    finally:
        await db.dispose()


if __name__ == "__main__":
    url, at, raw = sys.argv[1:4]
    pairs = [(int(m), int(s)) for m, s in (p.split(":") for p in raw.split(","))]
    print(json.dumps(asyncio.run(main(url, datetime.fromisoformat(at), pairs))), flush=True)
