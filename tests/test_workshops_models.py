"""Workshops on both databases: concurrent answers for a few places, exactly-once promotion, who may read what."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from models import me, runs, workshops
from models.db import Database
from models.errors import NotAllowed
from models.members import Actor, Member, Role, Status
from models.runs import Answer
from tests.conftest import NOW

START = NOW + timedelta(days=2)
_ids = itertools.count(800_000)


async def make_people(db: Database, count: int, unit: str = "i801") -> list[Member]:
    with db.writing() as s:
        people = [
            Member(telegram_id=t, unit_code=unit, employee_no=f"W{t}", name=f"同事{t}", status=Status.VERIFIED)
            for t in itertools.islice(_ids, count)
        ]
        s.add_all(people)
        s.flush()
        for p in people:
            s.refresh(p)
            s.expunge(p)
    return people


def actor(member: Member, *roles: str, admin: bool = False, cadre: bool = False) -> Actor:
    return Actor(member.telegram_id, member, admin, frozenset({None}) if cadre else frozenset(), frozenset(roles))


def draft(capacity: int, visibility: str = runs.Visibility.UNIT) -> workshops.WorkshopDraft:
    return workshops.WorkshopDraft("减压小组", "health", START, "302 室", capacity, "", visibility)


async def make_workshop(db: Database, counsellor: Member, capacity: int, **extra) -> int:
    with db.writing() as s:
        return workshops.create(s, actor(counsellor, Role.COUNSELLOR), draft(capacity, **extra), NOW).id


async def test_60_concurrent_answers_for_10_places_then_promotions_exactly_once(db):
    counsellor, *people = await make_people(db, 61)
    wid = await make_workshop(db, counsellor, 10)

    def going(member_id: int):
        return lambda s: workshops.respond(s, s.get(Member, member_id), wid, Answer.GOING, NOW)

    outcomes = await asyncio.gather(*(db.write(going(p.id)) for p in people))
    assert Counter(o.answer for o in outcomes) == {Answer.GOING: 10, Answer.WAITLIST: 50}
    assert sorted(o.position for o in outcomes if o.position) == list(range(1, 51))
    with db.reading() as s:
        assert s.get(runs.Event, wid).going == 10
        seated = s.exec(
            select(runs.Rsvp.member_id).where(col(runs.Rsvp.event_id) == wid, col(runs.Rsvp.answer) == Answer.GOING)
        ).all()

    def leave(member_id: int):
        return lambda s: workshops.respond(s, s.get(Member, member_id), wid, Answer.DECLINED, NOW)

    changes = await asyncio.gather(*(db.write(leave(m)) for m in seated))
    promoted = [p for c in changes for p in c.promoted]
    assert sorted(p.queue_no for p in promoted) == list(range(1, 11))
    # Two tellers race for each promotion: exactly one of them clears the mark (and queues the notice).
    cleared = await asyncio.gather(
        *(db.write(lambda s, r=p.rsvp_id: runs.promotion_noticed(s, r)) for p in promoted for _ in range(2))
    )
    assert cleared.count(True) == 10
    with db.reading() as s:
        assert s.get(runs.Event, wid).going == 10
        answers = Counter(s.exec(select(runs.Rsvp.answer).where(col(runs.Rsvp.event_id) == wid)).all())
        assert answers == {Answer.GOING: 10, Answer.WAITLIST: 40, Answer.DECLINED: 10}
        assert runs.pending_promotions(s) == []


async def test_only_a_counsellor_creates_and_only_its_own_counsellor_reads_the_list(db):
    counsellor, colleague, cadre, admin, member = await make_people(db, 5)
    (far,) = await make_people(db, 1, unit="i805")
    with db.writing() as s:
        for who in (actor(member), actor(cadre, cadre=True), actor(admin, admin=True)):
            with pytest.raises(NotAllowed):
                workshops.create(s, who, draft(5), NOW)
    wid = await make_workshop(db, counsellor, 5)
    await db.write(lambda s: workshops.respond(s, s.get(Member, member.id), wid, Answer.GOING, NOW))
    with db.writing() as s:
        _event, people = workshops.participants(s, actor(counsellor, Role.COUNSELLOR), wid)
        assert [p.member_id for p in people] == [member.id]
        for who in (
            actor(colleague, Role.COUNSELLOR),
            actor(cadre, cadre=True),
            actor(admin, Role.COUNSELLOR, admin=True),
            actor(member),
        ):
            with pytest.raises(NotAllowed):
                workshops.participants(s, who, wid)
            with pytest.raises(NotAllowed):
                workshops.cancel(s, who, wid, NOW)
        # Never among runs: not listed, not in my runs, no public card; another unit does not see it at all.
        assert runs.upcoming(s, s.get(Member, member.id), NOW, 50) == []
        assert runs.mine(s, s.get(Member, member.id), NOW, 50) == []
        assert runs.mine(s, s.get(Member, counsellor.id), NOW, 50) == []
        with pytest.raises(runs.RunNotFound):
            runs.public_card(s, wid)
        assert [e.id for e in workshops.upcoming(s, s.get(Member, member.id), NOW, 10)] == [wid]
        assert workshops.upcoming(s, s.get(Member, far.id), NOW, 10) == []
        with pytest.raises(workshops.WorkshopNotFound):
            workshops.card(s, s.get(Member, far.id), wid)
        with pytest.raises(workshops.WorkshopNotFound):
            workshops.respond(s, s.get(Member, far.id), wid, Answer.GOING, NOW)


async def test_a_deleted_account_gives_its_place_to_the_waitlist(db):
    counsellor, leaving, waiting = await make_people(db, 3)
    wid = await make_workshop(db, counsellor, 1)
    for who in (leaving, waiting):
        await db.write(lambda s, m=who.id: workshops.respond(s, s.get(Member, m), wid, Answer.GOING, NOW))
    with db.writing() as s:
        me.delete_account(s, leaving.id, NOW, ZoneInfo("Asia/Shanghai"))
    with db.writing() as s:
        pending = runs.pending_promotions(s)
        assert [p.person.member_id for p in pending] == [waiting.id]
        assert s.get(runs.Event, wid).going == 1
        _event, people = workshops.participants(s, actor(counsellor, Role.COUNSELLOR), wid)
        assert [(p.member_id, p.answer) for p in people] == [(waiting.id, Answer.GOING)]
