"""A separate OS process that claims one first-come item for many members at once (used by the tests).

Usage: python -m tests.welfare_claim_worker DATABASE_URL ITEM_ID NOW_ISO MEMBER_ID,MEMBER_ID,...
Prints "ready" once its own engine is connected, waits for a line on stdin (the go signal shared by all
workers), fires every claim concurrently and prints one JSON object: outcome -> count.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

import models  # noqa: F401  (registers every table)
from models import welfare
from models.db import Database
from models.errors import DomainError
from models.members import Member

TZ = ZoneInfo("Asia/Shanghai")
# Concurrent transactions per worker process (the pool opens connections only as they are needed).
CONNECTIONS = 8


def claim(session: Session, item_id: int, member_id: int, now: datetime) -> welfare.ClaimResult:
    """One member's claim (the model call the bot makes)."""
    return welfare.claim_first_come(session, session.get(Member, member_id), item_id, now, TZ)


async def claim_one(db: Database, item_id: int, member_id: int, now: datetime) -> str:
    """One claim in its own transaction on a worker thread: 'created', 'repeat' or the domain error's key."""
    try:
        result = await db.write(claim, item_id, member_id, now)
        return "created" if result.created else "repeat"
    except DomainError as exc:
        return exc.key


async def main(url: str, item_id: int, now: datetime, member_ids: list[int]) -> dict[str, int]:
    """Connect, wait for the go signal, claim for every member concurrently, count the outcomes."""
    db = Database(url, pg_workers=CONNECTIONS)
    try:
        with db.reading() as session:
            session.get(Member, member_ids[0])
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        # CONNECTIONS worker threads, so four workers plus the test stay well under PostgreSQL's 100 connections.
        outcomes = await asyncio.gather(*(claim_one(db, item_id, m, now) for m in member_ids))
        return dict(Counter(outcomes))
    finally:
        await db.dispose()


if __name__ == "__main__":
    url, item, at, ids = sys.argv[1:5]
    counts = asyncio.run(main(url, int(item), datetime.fromisoformat(at), [int(i) for i in ids.split(",")]))
    print(json.dumps(counts), flush=True)
