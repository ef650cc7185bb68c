"""A separate OS process that answers one run for many members at once (used by tests/test_runs_models.py).

Usage: python -m tests.runs_rsvp_worker DATABASE_URL EVENT_ID NOW_ISO ANSWER MEMBER_ID,MEMBER_ID,...
Prints "ready" once its own engine is connected, waits for a line on stdin (the go signal shared by all
workers), sends every answer concurrently and prints one JSON object: resulting answer -> count.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import datetime

from sqlmodel import Session

import models  # noqa: F401  (registers every table)
from models import runs
from models.db import Database
from models.errors import DomainError
from models.members import Member

CONNECTIONS = 8


def answer(session: Session, event_id: int, member_id: int, choice: str, now: datetime) -> runs.Change:
    """One member's answer (the model call the bot makes)."""
    return runs.respond(session, session.get(Member, member_id), event_id, runs.Answer(choice), now)


async def answer_one(db: Database, event_id: int, member_id: int, choice: str, now: datetime) -> str:
    """One answer in its own transaction: the answer it ended as, or the domain error's key."""
    try:
        change = await db.write(answer, event_id, member_id, choice, now)
        return str(change.answer)
    except DomainError as exc:
        return exc.key


async def main(url: str, event_id: int, now: datetime, choice: str, member_ids: list[int]) -> dict[str, int]:
    """Connect, wait for the go signal, answer for every member concurrently, count the outcomes."""
    db = Database(url, pg_workers=CONNECTIONS)
    try:
        with db.reading() as session:
            session.get(Member, member_ids[0])
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcomes = await asyncio.gather(*(answer_one(db, event_id, m, choice, now) for m in member_ids))
        return dict(Counter(outcomes))
    finally:
        await db.dispose()


if __name__ == "__main__":
    url, event, at, choice, ids = sys.argv[1:6]
    counts = asyncio.run(main(url, int(event), datetime.fromisoformat(at), choice, [int(i) for i in ids.split(",")]))
    print(json.dumps(counts), flush=True)
