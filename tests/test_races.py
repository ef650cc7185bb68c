"""Two writes about the same row at the same moment, on PostgreSQL worker threads: each decides exactly once.

`race` runs the first write's statements, then the second's while the first transaction is still open; the first
commits only once the second has finished or waits for a row lock the first holds. That is the interleaving in
which a read-modify-write (read the row, change it in Python, write it back) tells both sides they won, or fails
with StaleDataError; conditional statements (UPDATE/DELETE ... WHERE status = 'pending' RETURNING) decide once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import Session, select

from buttons.members import ApproveMember, DeclineMember
from models import members
from models.audit import AuditEntry
from models.db import Database
from models.errors import DomainError
from models.members import Actor, Member, Role, RoleGrant, Status
from tests.conftest import ADMIN_ID, PG_URL, Bot, fresh_schema, make_config, make_member, seed_units

# How long a thread waits for the other side: only reached when the code under test is wrong.
WAIT = 10
ROUNDS = 6
UNIT_CADRE = Actor(7001, None, False, frozenset({"i801"}), frozenset({Role.CADRE}))
BUREAU = Actor(7002, None, False, frozenset({None}), frozenset({Role.CADRE}))


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh PostgreSQL database with the units."""
    database = Database(PG_URL)
    fresh_schema(database)
    seed_units(database, make_config(PG_URL, tmp_path))
    yield database
    await database.dispose()


def _lock_waiters(conn: psycopg.Connection) -> int:
    """Sessions of this test database waiting for a lock (the other write, blocked by ours)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return row[0]


async def race(db: Database, first: Callable[[Session], Any], second: Callable[[Session], Any]) -> list[Any]:
    """Run `first`, then `second` while the first transaction is open (see the module docstring).

    Returns each write's result or exception, first's first.
    """
    first_done, second_done = threading.Event(), threading.Event()

    def run_first(session: Session) -> Any:
        with psycopg.connect(PG_URL, autocommit=True) as watcher:
            try:
                return first(session)
            finally:
                first_done.set()
                deadline = time.monotonic() + WAIT
                while not second_done.is_set() and not _lock_waiters(watcher) and time.monotonic() < deadline:
                    time.sleep(0.005)

    def run_second(session: Session) -> Any:
        assert first_done.wait(WAIT)
        try:
            return second(session)
        finally:
            second_done.set()

    return list(await asyncio.gather(db.write(run_first), db.write(run_second), return_exceptions=True))


def _pending(db: Database, telegram_id: int) -> int:
    """A pending request in unit i801; returns the member id."""
    with db.writing() as session:
        member = Member(telegram_id=telegram_id, unit_code="i801", employee_no=f"R{telegram_id}", name="申请人")
        session.add(member)
        session.flush()
        return member.id


def _outcome(result: Any) -> str:
    """'won' for a decision that took effect, the error key for a refusal; anything else fails the test."""
    if isinstance(result, DomainError):
        return result.key
    if isinstance(result, BaseException):
        raise result
    return "won"


async def test_approve_and_decline_at_once_decide_exactly_once(pg: Database) -> None:
    for round_ in range(ROUNDS):
        member_id = _pending(pg, 5000 + round_)
        approve_first = round_ % 2 == 0
        approve = lambda s, m=member_id: members.decide(s, UNIT_CADRE, m, True)  # noqa: E731
        decline = lambda s, m=member_id: members.decide(s, BUREAU, m, False)  # noqa: E731
        results = await race(pg, approve, decline) if approve_first else await race(pg, decline, approve)
        first, second = results
        assert (_outcome(first), _outcome(second)) == ("won", "request_gone"), round_
        assert first.telegram_id == 5000 + round_
        with pg.reading() as s:
            stored = s.get(Member, member_id)
            audit = s.exec(select(AuditEntry.action).where(AuditEntry.target == f"member:{member_id}")).all()
        if approve_first:
            assert stored.status == Status.VERIFIED and audit == ["approve_member"]
        else:
            assert stored is None and audit == ["decline_member"]


async def test_withdraw_and_approve_at_once_end_one_way(pg: Database) -> None:
    for round_ in range(ROUNDS):
        telegram_id = 5100 + round_
        member_id = _pending(pg, telegram_id)
        withdraw_first = round_ % 2 == 0
        withdraw = lambda s, t=telegram_id: members.withdraw_request(s, t)  # noqa: E731
        approve = lambda s, m=member_id: members.decide(s, UNIT_CADRE, m, True)  # noqa: E731
        if withdraw_first:
            outcomes = [_outcome(r) for r in await race(pg, withdraw, approve)]
            assert outcomes == ["won", "request_gone"], round_
        else:
            outcomes = [_outcome(r) for r in await race(pg, approve, withdraw)]
            assert outcomes == ["won", "not_found"], round_
        with pg.reading() as s:
            stored = s.get(Member, member_id)
        # Never a verified member deleted by a late withdrawal, never a StaleDataError.
        assert (stored is None) if withdraw_first else (stored.status == Status.VERIFIED)


async def test_two_ranking_toggles_at_once_flip_twice(pg: Database) -> None:
    member = await make_member(pg, 5201)
    for round_ in range(ROUNDS):
        toggle = lambda s: members.toggle_ranking_opt_out(s, member.id)  # noqa: E731
        assert await race(pg, toggle, toggle) == [True, False], round_
        with pg.reading() as s:
            assert s.get(Member, member.id).ranking_opt_out is False


async def test_two_erasures_at_once_erase_once(pg: Database) -> None:
    for round_ in range(ROUNDS):
        member = await make_member(pg, 5300 + round_, role=Role.VOLUNTEER)
        erase = lambda s, m=member.id: members.erase_member(s, m)  # noqa: E731
        assert [_outcome(r) for r in await race(pg, erase, erase)] == ["won", "not_found"], round_
        with pg.reading() as s:
            stored = s.get(Member, member.id)
            audit = s.exec(select(AuditEntry.action).where(AuditEntry.target == f"member:{member.id}")).all()
            roles = s.exec(select(RoleGrant).where(RoleGrant.member_id == member.id)).all()
        assert (stored.status, stored.telegram_id, stored.name, audit, roles) == (
            Status.DELETED,
            None,
            None,
            ["erase_member"],
            [],
        )


async def test_a_promotion_while_the_role_is_taken_away_does_not_fail(pg: Database) -> None:
    admin = Actor(ADMIN_ID, None, True, frozenset(), frozenset())
    for round_ in range(ROUNDS):
        target = await make_member(pg, 5400 + round_, role=Role.CADRE)
        demote = lambda s, t=target: members.set_role(s, admin, t, Role.CADRE, None, grant=False)  # noqa: E731
        rescope = lambda s, t=target: members.set_role(s, admin, t, Role.CADRE, "i802", grant=True)  # noqa: E731
        assert [_outcome(r) for r in await race(pg, demote, rescope)] == ["won", "won"], round_
        with pg.reading() as s:
            grants = s.exec(select(RoleGrant.role, RoleGrant.unit_code).where(RoleGrant.member_id == target.id)).all()
        # The promotion came last: the member is a cadre of i802 (not an error, not a lost grant).
        assert grants == [(Role.CADRE, "i802")]


async def test_one_person_registering_from_two_devices_at_once_is_told_they_are_pending(pg: Database) -> None:
    for round_ in range(ROUNDS):
        telegram_id = 5600 + round_
        register = lambda s, t=telegram_id: members.register(s, t, "i801", f"D{t}", "两台手机", "zh")  # noqa: E731
        assert [_outcome(r) for r in await race(pg, register, register)] == ["won", "already_pending"], round_


async def test_two_processes_starting_at_once_both_sync_the_units(pg: Database) -> None:
    for round_ in range(ROUNDS):
        code = f"new{round_}"
        first = lambda s, c=code: members.sync_units(s, [(c, "新单位", "New unit")])  # noqa: E731
        second = lambda s, c=code: members.sync_units(s, [(c, "新单位（改名）", "New unit (renamed)")])  # noqa: E731
        assert await race(pg, first, second) == [None, None], round_
        with pg.reading() as s:
            assert s.get(members.UnitRow, code).name_zh == "新单位（改名）"


# --- through the bot ---------------------------------------------------------------------------------


async def test_two_cadres_pressing_approve_and_decline_at_once_tell_the_member_one_outcome(pg_bot: Bot) -> None:
    await make_member(pg_bot.db, 7101, "i801", role=Role.CADRE)
    cadre, admin = pg_bot.user(7101), pg_bot.user(ADMIN_ID)
    await cadre.send("/help")
    await admin.send("/help")
    for round_ in range(3):
        applicant = 5500 + round_
        member_id = _pending(pg_bot.db, applicant)
        presses = (cadre.press(ApproveMember(member_id).pack()), admin.press(DeclineMember(member_id).pack()))
        await asyncio.gather(*(presses if round_ % 2 else presses[::-1]))
        told = [m.text for m in pg_bot.api.chats.get(applicant, [])]
        with pg_bot.db.reading() as s:
            stored = s.get(Member, member_id)
        if stored is None:
            assert len(told) == 1 and "未通过" in told[0], told
        else:
            assert stored.status == Status.VERIFIED
            assert len(told) == 1 and "入会申请已通过" in told[0], told
        refusals = [text for _id, text in pg_bot.api.answers[-2:] if text == "这条申请已被处理或已撤回。"]
        assert len(refusals) == 1, pg_bot.api.answers[-2:]
