"""Many members and one broadcast to all of them, queued: for the broadcast process tests and bench/broadcast.py."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session

from buttons.broadcasts import GotIt
from models import broadcasts
from models.broadcasts import QuietHours
from models.clock import utcnow
from models.members import Actor, Member, Status

# Recipients' chat ids start here (private chats: positive).
FIRST_CHAT = 10_000_000
INSERT_CHUNK = 500
# Equal start and end: no quiet hours, so the copies are due at once.
NO_QUIET = QuietHours(time(0, 0), time(0, 0), ZoneInfo("Asia/Shanghai"))


def add_members(session: Session, count: int, unit_codes: list[str], now: datetime) -> None:
    """`count` verified members spread over the units, chat ids FIRST_CHAT onwards, half of them under 35."""
    rows = [
        {
            "telegram_id": FIRST_CHAT + i,
            "unit_code": unit_codes[i % len(unit_codes)],
            "employee_no": f"BC{i:06d}",
            "name": f"会员{i}",
            "birth_year": 1970 + i % 40,
            "status": Status.VERIFIED.value,
            "language": "zh" if i % 3 else "en",
            "ranking_opt_out": False,
            "blocked_bot": False,
            "balance": 0,
            "created_at": now,
            "verified_at": now,
        }
        for i in range(count)
    ]
    for start in range(0, count, INSERT_CHUNK):
        session.exec(insert(Member).values(rows[start : start + INSERT_CHUNK]))


def queue_broadcast(session: Session, author: int, source_message_id: int, unit_codes: list[str]) -> int:
    """A bureau admin's broadcast of their message `source_message_id` to everyone, confirmed; returns its id."""
    now = utcnow()
    admin = Actor(author, None, True, frozenset({None}), frozenset())
    draft = broadcasts.start_draft(session, admin, author, source_message_id, "text", now)
    assert draft.id is not None
    broadcasts.toggle_ack(session, admin, draft.id)

    def ack(broadcast_id: int, locale: str) -> tuple[str, str]:
        return GotIt(broadcast_id).pack(), "收到" if locale == "zh" else "Got it"

    broadcasts.send_now(
        session, admin, draft.id, now=now, today=now.date(), all_units=unit_codes, quiet=NO_QUIET, ack=ack
    )
    return draft.id
