"""Runs and events on both databases: seats, waitlist order, exactly-once promotion, check-in points, visibility."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from config import PointsRule
from models import audience, clubs, me, runs
from models.db import Database
from models.errors import DomainError
from models.members import Member, Status
from models.points import LedgerEntry
from models.runs import Answer
from tests.conftest import NOW, PG_URL
from tests.workers import race

ATTEND = PointsRule("run_attendance", 10, 20)
WINDOW = (timedelta(minutes=30), timedelta(minutes=60))
START = NOW + timedelta(days=2)
_ids = itertools.count(700_000)


async def make_people(db: Database, count: int, unit: str = "i801") -> list[Member]:
    """Verified members with Telegram ids."""
    with db.writing() as s:
        people = []
        for _ in range(count):
            tid = next(_ids)
            people.append(
                Member(
                    telegram_id=tid,
                    unit_code=unit,
                    employee_no=f"R{tid}",
                    name=f"跑友{tid}",
                    status=Status.VERIFIED,
                )
            )
        s.add_all(people)
        s.flush()
        for p in people:
            s.refresh(p)
            s.expunge(p)
    return people


async def make_run(db: Database, organiser: Member, capacity: int = 50, **extra: Any) -> runs.Event:
    draft = runs.Draft(starts_at=extra.pop("starts_at", START), place="世纪公园 3 号门", capacity=capacity, **extra)
    with db.writing() as s:
        event = runs.create_event(s, s.get(Member, organiser.id), draft, NOW)
        s.expunge(event)
    return event


async def run(db: Database, fn: Callable[[Session], Any]) -> Any:
    return await db.write(fn)


def _answer(event_id: int, member_id: int, choice: Answer, now=NOW) -> Callable[[Session], runs.Change]:
    return lambda s: runs.respond(s, s.get(Member, member_id), event_id, choice, now)


async def rows(db: Database, event_id: int) -> list[runs.Rsvp]:
    with db.reading() as s:
        return list(s.exec(select(runs.Rsvp).where(col(runs.Rsvp.event_id) == event_id).order_by(col(runs.Rsvp.id))))


async def event_row(db: Database, event_id: int) -> runs.Event:
    with db.reading() as s:
        return s.get(runs.Event, event_id)


async def test_300_concurrent_going_on_50_seats_then_40_withdrawals_promote_exactly_40(db):
    organiser, *people = await make_people(db, 301)
    event = await make_run(db, organiser, capacity=50)
    outcomes = await asyncio.gather(*(run(db, _answer(event.id, p.id, Answer.GOING)) for p in people))
    assert Counter(o.answer for o in outcomes) == {Answer.GOING: 50, Answer.WAITLIST: 250}
    stored = await rows(db, event.id)
    going = [r for r in stored if r.answer == Answer.GOING]
    waiting = sorted((r for r in stored if r.answer == Answer.WAITLIST), key=lambda r: r.queue_no)
    assert len(going) == 50 and (await event_row(db, event.id)).going == 50
    # Tickets 1..250 without gaps, each member once, and the places told match the tickets.
    assert [r.queue_no for r in waiting] == list(range(1, 251))
    assert sorted(o.position for o in outcomes if o.position) == list(range(1, 251))

    leaving = [r.member_id for r in going[:40]]
    changes = await asyncio.gather(*(run(db, _answer(event.id, m, Answer.DECLINED)) for m in leaving))
    promoted = [p for c in changes for p in c.promoted]
    assert len(promoted) == 40 and len({p.rsvp_id for p in promoted}) == 40
    # The first 40 on the waitlist, in arrival order, no one twice.
    assert sorted(p.queue_no for p in promoted) == list(range(1, 41))
    after = await rows(db, event.id)
    assert Counter(r.answer for r in after) == {Answer.GOING: 50, Answer.WAITLIST: 210, Answer.DECLINED: 40}
    assert (await event_row(db, event.id)).going == 50
    # Each promotion is told once: the first clear wins, a second finds nothing.
    with db.writing() as s:
        assert len(runs.pending_promotions(s)) == 40
        assert all(runs.promotion_noticed(s, p.rsvp_id) for p in promoted)
        assert not any(runs.promotion_noticed(s, p.rsvp_id) for p in promoted)


async def _workers(event_id: int, choice: str, shares: list[list[int]]) -> Counter[str]:
    """One OS process per share, all answering at the same go signal; their outcomes added up."""
    args = [PG_URL, str(event_id), NOW.isoformat(), choice]
    return await race("tests.runs_rsvp_worker", [[*args, ",".join(map(str, share))] for share in shares])


async def test_four_processes_on_postgresql_fill_50_seats_and_promote_40_once(pg_db):
    organiser, *people = await make_people(pg_db, 301)
    event = await make_run(pg_db, organiser, capacity=50)
    ids = [p.id for p in people]
    outcomes = await _workers(event.id, "going", [ids[i::4] for i in range(4)])
    assert outcomes == {"going": 50, "waitlist": 250}
    stored = await rows(pg_db, event.id)
    going = [r.member_id for r in stored if r.answer == Answer.GOING]
    assert sorted(r.queue_no for r in stored if r.answer == Answer.WAITLIST) == list(range(1, 251))
    leaving = going[:40]
    outcomes = await _workers(event.id, "declined", [leaving[i::4] for i in range(4)])
    assert outcomes == {"declined": 40}
    after = await rows(pg_db, event.id)
    promoted = [r for r in after if r.promoted]
    assert len(promoted) == 40 and sorted(r.queue_no for r in promoted) == list(range(1, 41))
    assert Counter(r.answer for r in after) == {Answer.GOING: 50, Answer.WAITLIST: 210, Answer.DECLINED: 40}
    assert (await event_row(pg_db, event.id)).going == 50


async def test_answers_move_between_going_maybe_and_waitlist(db):
    organiser, a, b, c = await make_people(db, 4)
    event = await make_run(db, organiser, capacity=1)
    assert (await run(db, _answer(event.id, a.id, Answer.GOING))).answer == Answer.GOING
    # A second press of Going changes nothing (no second seat).
    assert (await run(db, _answer(event.id, a.id, Answer.GOING))).answer == Answer.GOING
    waiting = await run(db, _answer(event.id, b.id, Answer.GOING))
    assert (waiting.answer, waiting.position) == (Answer.WAITLIST, 1)
    assert (await run(db, _answer(event.id, c.id, Answer.MAYBE))).answer == Answer.MAYBE
    # Going -> Maybe frees the seat: b is promoted.
    moved = await run(db, _answer(event.id, a.id, Answer.MAYBE))
    assert moved.answer == Answer.MAYBE and [p.person.member_id for p in moved.promoted] == [b.id]
    # Now a wants to go again: full, so a joins the waitlist.
    again = await run(db, _answer(event.id, a.id, Answer.GOING))
    assert (again.answer, again.position) == (Answer.WAITLIST, 1)
    with db.reading() as s:
        card = runs.card(s, s.get(Member, a.id), event.id)
        assert (card.event.going, card.maybe, card.waitlist, card.mine, card.position) == (1, 1, 1, "waitlist", 1)


async def test_unit_only_runs_are_invisible_to_other_units_and_club_runs_to_non_members(db):
    (organiser,) = await make_people(db, 1, unit="i801")
    (stranger,) = await make_people(db, 1, unit="i805")
    event = await make_run(db, organiser)
    with pytest.raises(runs.NotVisible):
        await run(db, _answer(event.id, stranger.id, Answer.GOING))
    with db.reading() as s:
        assert runs.upcoming(s, s.get(Member, stranger.id), NOW, 10) == []
        assert [e.id for e in runs.upcoming(s, s.get(Member, organiser.id), NOW, 10)] == [event.id]
    with db.writing() as s:
        club = clubs.Club(code="run", name="跑团")
        s.add(club)
        s.flush()
        s.add(clubs.ClubMember(club_id=club.id, member_id=organiser.id))
        club_id = club.id
    club_run = await make_run(db, organiser, visibility=runs.Visibility.CLUB, club_id=club_id)
    (colleague,) = await make_people(db, 1, unit="i801")
    with pytest.raises(runs.NotVisible):
        await run(db, _answer(club_run.id, colleague.id, Answer.GOING))
    with db.writing() as s:
        s.add(clubs.ClubMember(club_id=club_id, member_id=colleague.id))
    assert (await run(db, _answer(club_run.id, colleague.id, Answer.GOING))).answer == Answer.GOING
    with db.reading() as s:
        found = runs.upcoming(s, s.get(Member, colleague.id), NOW, 10, club_only=True)
        assert [e.id for e in found] == [club_run.id]
        # The audience's club filter reaches the club's members.
        reached = s.exec(audience.members(audience.Audience(clubs=(club_id,)), NOW.date())).all()
        assert sorted(r.id for r in reached) == sorted([organiser.id, colleague.id])


async def test_check_in_pays_once_inside_the_window_and_refuses_the_rest(db):
    organiser, runner, lurker = await make_people(db, 3)
    event = await make_run(db, organiser)
    await run(db, _answer(event.id, runner.id, Answer.GOING))
    day = START.date()

    def scan(member: Member, at):
        return lambda s: runs.check_in(s, s.get(Member, member.id), event.checkin_token, at, WINDOW, ATTEND, day)

    with pytest.raises(DomainError) as early:
        await run(db, scan(runner, START - timedelta(hours=1)))
    assert early.value.key == "runs_checkin_closed"
    with pytest.raises(DomainError) as nobody:
        await run(db, scan(lurker, START))
    assert nobody.value.key == "runs_no_rsvp"
    scans = await asyncio.gather(*(run(db, scan(runner, START)) for _ in range(5)))
    assert Counter(c.outcome for c in scans) == {runs.CheckOutcome.CHECKED_IN: 1, runs.CheckOutcome.ALREADY: 4}
    assert sum(c.points for c in scans) == 10
    marked = await run(
        db,
        lambda s: runs.mark_attendance(s, s.get(Member, organiser.id), event.id, runner.id, START, WINDOW, ATTEND, day),
    )
    assert (marked.outcome, marked.points) == (runs.CheckOutcome.ALREADY, 0)
    with db.reading() as s:
        paid = s.exec(select(func.sum(LedgerEntry.delta)).where(col(LedgerEntry.member_id) == runner.id)).one()
        assert paid == 10 == s.get(Member, runner.id).balance
    with pytest.raises(runs.NotOrganiser):
        await run(
            db,
            lambda s: runs.mark_attendance(
                s, s.get(Member, runner.id), event.id, runner.id, START, WINDOW, ATTEND, day
            ),
        )


async def test_reminders_are_taken_once_and_a_new_time_resets_them(db):
    organiser, runner = await make_people(db, 2)
    event = await make_run(db, organiser, starts_at=NOW + timedelta(hours=20))
    await run(db, _answer(event.id, runner.id, Answer.GOING))
    with db.reading() as s:
        assert runs.due_reminders(s, NOW, "day") == [event.id]
        assert runs.due_reminders(s, NOW, "hour") == []
    first = await run(db, lambda s: runs.take_reminder(s, event.id, "day", NOW))
    assert [p.member_id for p in first[1]] == [runner.id]
    assert await run(db, lambda s: runs.take_reminder(s, event.id, "day", NOW)) is None
    moved, told = await run(
        db,
        lambda s: runs.change_event(
            s, s.get(Member, organiser.id), event.id, NOW, starts_at=NOW + timedelta(hours=30), place=None
        ),
    )
    assert [p.member_id for p in told] == [runner.id] and not moved.reminded_day


async def test_cancel_tells_everyone_and_closes_answers(db):
    organiser, a, b = await make_people(db, 3)
    event = await make_run(db, organiser, capacity=1)
    await run(db, _answer(event.id, a.id, Answer.GOING))
    await run(db, _answer(event.id, b.id, Answer.GOING))
    with pytest.raises(runs.NotOrganiser):
        await run(db, lambda s: runs.cancel_event(s, s.get(Member, a.id), event.id, NOW))
    _event, told = await run(db, lambda s: runs.cancel_event(s, s.get(Member, organiser.id), event.id, NOW))
    assert sorted(p.member_id for p in told) == sorted([a.id, b.id])
    with pytest.raises(runs.EventClosed):
        await run(db, _answer(event.id, b.id, Answer.MAYBE))


async def test_a_deleted_account_frees_its_seat_for_the_waitlist(db):
    organiser, a, b = await make_people(db, 3)
    event = await make_run(db, organiser, capacity=1)
    await run(db, _answer(event.id, a.id, Answer.GOING))
    await run(db, _answer(event.id, b.id, Answer.GOING))
    await run(db, lambda s: runs.forget_member(s, a.id, NOW))
    stored = await rows(db, event.id)
    assert [(r.member_id, r.answer, r.promoted) for r in stored] == [(b.id, "going", True)]
    assert (await event_row(db, event.id)).going == 1


async def test_deleting_an_account_leaves_clubs_and_runs_and_closes_the_group_door(db):
    organiser, leaving, waiting = await make_people(db, 3)
    event = await make_run(db, organiser, capacity=1)
    await run(db, _answer(event.id, leaving.id, Answer.GOING))
    await run(db, _answer(event.id, waiting.id, Answer.GOING))
    with db.writing() as s:
        club = clubs.Club(code="run", name="跑团", chat_id=-100123)
        s.add(club)
        s.flush()
        s.add(clubs.ClubMember(club_id=club.id, member_id=leaving.id))
        s.add(clubs.ClubMember(club_id=club.id, member_id=waiting.id, status=clubs.MemberStatus.PENDING))
        club_id = club.id
    with db.reading() as s:
        assert clubs.may_enter(s, -100123, leaving.telegram_id)[1] is True
        # A pending request is not membership: the group stays closed to it.
        assert clubs.may_enter(s, -100123, waiting.telegram_id)[1] is False
    await run(db, lambda s: me.delete_account(s, leaving.id, NOW, ZoneInfo("Asia/Shanghai")))
    with db.reading() as s:
        assert clubs.may_enter(s, -100123, leaving.telegram_id) == (s.get(clubs.Club, club_id), False)
        assert [r.member_id for r in s.exec(select(clubs.ClubMember))] == [waiting.id]
        reached = s.exec(audience.members(audience.Audience(clubs=(club_id,)), NOW.date())).all()
        assert reached == []
    stored = await rows(db, event.id)
    assert [(r.member_id, r.answer, r.promoted) for r in stored] == [(waiting.id, "going", True)]
