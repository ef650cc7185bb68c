"""Care in the database (SQLite and PostgreSQL): no double booking under concurrency, limits, windows, reminders
once each, escalation timing, counts without names, erasure."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from config import ConfigError
from messages import Renderer
from models import care
from models.care import counselling, requests, stats
from models.care.tables import BookingStatus, CareBooking, CareRequest, CareRequestStep, CareSlot
from models.db import Database
from models.errors import DomainError
from models.me import delete_account
from models.members import Actor, Member, Role, RoleGrant
from models.outbox import OutboxMessage
from scheduled.care import run_care
from services import Services
from tests.conftest import NOW, PG_URL, make_config, make_member
from tests.workers import race

TZ = ZoneInfo("Asia/Shanghai")
WINDOW = timedelta(hours=24)
PLAN = counselling.SlotPlan("phone", "", ("career", "health"), 50)


def counsellor_actor(member: Member) -> Actor:
    return Actor(member.telegram_id, member, False, frozenset(), frozenset({Role.COUNSELLOR}))


async def make_counsellor(db: Database, telegram_id: int) -> Actor:
    return counsellor_actor(await make_member(db, telegram_id, role=Role.COUNSELLOR, role_unit=None))


async def make_slots(db: Database, actor: Actor, n: int, first: datetime | None = None) -> list[int]:
    """n one-hour slots back to back from `first` (default: two days after NOW)."""
    start = first or NOW + timedelta(days=2)
    with db.writing() as s:
        for i in range(n):
            counselling.add_slot(s, actor, start + timedelta(hours=i), PLAN, NOW)
        rows = s.exec(select(CareSlot.id).where(CareSlot.counsellor_id == actor.member.id).order_by(CareSlot.id))
        return list(rows)


def book(db: Database, member_id: int, slot_id: int, now: datetime = NOW, limit: int = 2, note: str | None = None):
    with db.writing() as s:
        return counselling.book(s, member_id, slot_id, "career", now, limit, None, note)


def active(db: Database) -> list[CareBooking]:
    with db.reading() as s:
        return list(s.exec(select(CareBooking).where(CareBooking.status == BookingStatus.ACTIVE)))


async def test_hundred_members_racing_for_ten_slots_get_ten_bookings(db):
    counsellor = await make_counsellor(db, 3000)
    slots = await make_slots(db, counsellor, 10)
    people = [await make_member(db, 3100 + i) for i in range(100)]

    async def attempt(member: Member, slot_id: int) -> str:
        try:
            await db.write(counselling.book, member.id, slot_id, "career", NOW, 2, None, None)
            return "created"
        except DomainError as exc:
            return exc.key

    outcomes = Counter(await asyncio.gather(*(attempt(m, slots[i % 10]) for i, m in enumerate(people))))
    assert outcomes == {"created": 10, "care_slot_taken": 90}
    booked = active(db)
    assert len(booked) == 10 and sorted(b.slot_id for b in booked) == sorted(slots)


async def test_the_database_refuses_a_second_active_booking_of_a_slot(db):
    counsellor = await make_counsellor(db, 3000)
    (slot_id,) = await make_slots(db, counsellor, 1)
    first, second = await make_member(db, 3101), await make_member(db, 3102)
    booking = book(db, first.id, slot_id)
    with pytest.raises(IntegrityError), db.writing() as s:
        copy = CareBooking(**booking.model_dump(exclude={"id"}))
        copy.member_id = second.id
        s.add(copy)
        s.flush()


async def test_four_processes_booking_ten_slots_for_a_hundred_members_on_postgresql(pg_db):
    counsellor = await make_counsellor(pg_db, 3000)
    slots = await make_slots(pg_db, counsellor, 10)
    people = [(await make_member(pg_db, 3100 + i)).id for i in range(100)]
    pairs = [f"{m}:{slots[i % 10]}" for i, m in enumerate(people)]
    argsets = [[PG_URL, NOW.isoformat(), ",".join(pairs[p::4])] for p in range(4)]
    outcomes = await race("tests.care_book_worker", argsets)
    assert outcomes == {"created": 10, "care_slot_taken": 90}
    booked = active(pg_db)
    assert len(booked) == 10 and len({b.slot_id for b in booked}) == 10


async def test_limits_overlap_past_removed_and_forged_slots_change_nothing(db):
    counsellor = await make_counsellor(db, 3000)
    other = await make_counsellor(db, 3001)
    slots = await make_slots(db, counsellor, 4)
    (same_time,) = await make_slots(db, other, 1)
    member = await make_member(db, 3101)
    book(db, member.id, slots[0])
    with pytest.raises(DomainError) as overlap:
        book(db, member.id, same_time)
    assert overlap.value.key == "care_booking_overlap"
    book(db, member.id, slots[1])
    with pytest.raises(DomainError) as limit:
        book(db, member.id, slots[2])
    assert (limit.value.key, limit.value.params) == ("care_booking_limit", {"limit": 2})
    with pytest.raises(DomainError) as forged:
        book(db, member.id, 99999)
    assert forged.value.key == "care_slot_unknown"
    with db.writing() as s:
        counselling.remove_slot(s, counsellor, slots[3], None, NOW)
    someone = await make_member(db, 3102)
    with pytest.raises(DomainError) as removed:
        book(db, someone.id, slots[3])
    assert removed.value.key == "care_slot_unknown"
    with pytest.raises(DomainError) as past:
        book(db, someone.id, slots[2], now=NOW + timedelta(days=3))
    assert past.value.key == "care_slot_past"
    assert len(active(db)) == 2


async def test_cancel_window_late_cancel_and_reschedule(db):
    counsellor = await make_counsellor(db, 3000)
    slots = await make_slots(db, counsellor, 3)
    member = await make_member(db, 3101)
    booking = book(db, member.id, slots[0])
    with db.writing() as s:
        moved = counselling.reschedule(s, member.id, booking.id, slots[1], NOW, 2, WINDOW)
    assert moved.slot_id == slots[1]
    late = slots[1]
    with db.reading() as s:
        start = s.get(CareSlot, late).starts_at
    with pytest.raises(DomainError) as too_late, db.writing() as s:
        counselling.reschedule(s, member.id, moved.id, slots[2], start - timedelta(hours=23), 2, WINDOW)
    assert too_late.value.key == "care_too_late_to_move"
    with db.writing() as s:
        cancelled = counselling.cancel(s, member.id, moved.id, start - timedelta(hours=23), WINDOW)
    assert cancelled.status == BookingStatus.LATE_CANCELLED
    again = book(db, member.id, slots[2])
    with db.writing() as s:
        early = counselling.cancel(s, member.id, again.id, NOW, WINDOW)
    assert early.status == BookingStatus.CANCELLED
    # Someone else's booking id is unknown to me.
    stranger = await make_member(db, 3102)
    with pytest.raises(DomainError) as forged, db.writing() as s:
        counselling.cancel(s, stranger.id, booking.id, NOW, WINDOW)
    assert forged.value.key == "care_booking_unknown"


async def test_weekly_pattern_skips_existing_and_past_times(db):
    counsellor = await make_counsellor(db, 3000)
    first = NOW.astimezone(TZ).date()
    starts = counselling.pattern_starts(first, first + timedelta(days=13), [1, 3], time(9), time(11), 60, TZ)
    assert len(starts) == 8 and all(s.tzinfo is not None for s in starts)
    with db.writing() as s:
        assert counselling.add_pattern(s, counsellor, starts, PLAN, NOW) == 8
        assert counselling.add_pattern(s, counsellor, starts, PLAN, NOW) == 0
    with pytest.raises(DomainError) as empty, db.writing() as s:
        counselling.add_pattern(s, counsellor, starts, PLAN, NOW + timedelta(days=30))
    assert empty.value.key == "care_pattern_empty"


async def test_only_counsellors_manage_slots_and_only_their_own(db):
    counsellor = await make_counsellor(db, 3000)
    other = await make_counsellor(db, 3001)
    (slot_id,) = await make_slots(db, counsellor, 1)
    admin = Actor(1000, await make_member(db, 1000), True, frozenset({None}), frozenset({Role.ADMIN}))
    with pytest.raises(DomainError) as not_counsellor, db.writing() as s:
        counselling.own_slot(s, admin, slot_id)
    assert not_counsellor.value.key == "not_allowed"
    with pytest.raises(DomainError) as not_mine, db.writing() as s:
        counselling.own_slot(s, other, slot_id)
    assert not_mine.value.key == "care_slot_unknown"


def services_for(db: Database, tmp_path: Path) -> Services:
    config = make_config("sqlite://", tmp_path)
    return Services(config, db, Renderer())


def outbox(db: Database) -> list[OutboxMessage]:
    with db.reading() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "care").order_by(OutboxMessage.id)))


async def test_reminders_a_day_and_an_hour_before_once_each(db, tmp_path):
    counsellor = await make_counsellor(db, 3000)
    (slot_id,) = await make_slots(db, counsellor, 1)
    member = await make_member(db, 3101)
    booking = book(db, member.id, slot_id)
    services = services_for(db, tmp_path)
    start = booking.starts_at
    assert await run_care(services, start - timedelta(hours=30)) == "ok"
    assert outbox(db) == []
    for _ in range(2):
        await run_care(services, start - timedelta(hours=20))
    day = outbox(db)
    assert sorted(m.chat_id for m in day) == [3000, 3101]
    assert all("即将" in m.text for m in day)
    for _ in range(2):
        await run_care(services, start - timedelta(minutes=50))
    sent = outbox(db)
    assert len(sent) == 4 and all("一小时后" in m.text for m in sent[2:])
    await run_care(services, start + timedelta(minutes=10))
    assert len(outbox(db)) == 4


async def test_requests_escalate_after_the_configured_time_once(db, tmp_path):
    unit_handler = await make_member(db, 4001, role=Role.CADRE)
    bureau_handler = await make_member(db, 4002, role=Role.CADRE, role_unit=None)
    with db.writing() as s:
        for m in (unit_handler, bureau_handler):
            s.add(RoleGrant(member_id=m.id, role=Role.CARE_HANDLER, unit_code=None))
    member = await make_member(db, 4101)
    with db.writing() as s:
        request = requests.create(s, member, "aid", "illness", "生病住院", None, None, NOW)
    bureau = Actor(4002, bureau_handler, False, frozenset({None}), frozenset({Role.CADRE, Role.CARE_HANDLER}))
    with pytest.raises(DomainError) as hidden, db.writing() as s:
        requests.handled_request(s, bureau, request.id)
    assert hidden.value.key == "care_request_unknown"
    services = services_for(db, tmp_path)
    await run_care(services, NOW + timedelta(hours=47))
    assert outbox(db) == []
    for _ in range(2):
        await run_care(services, NOW + timedelta(hours=49))
    sent = outbox(db)
    assert [m.chat_id for m in sent] == [4002] and "已等 49 小时" in sent[0].text
    with db.writing() as s:
        seen, _member = requests.handled_request(s, bureau, request.id)
    assert seen.escalated_at is not None


async def test_counts_hide_small_cells_and_name_nobody(db):
    counsellor = await make_counsellor(db, 3000)
    slots = await make_slots(db, counsellor, 6)
    for i, slot_id in enumerate(slots):
        book(db, (await make_member(db, 3100 + i)).id, slot_id)
    cadre = Actor(4001, None, False, frozenset({"i801"}), frozenset({Role.CADRE}))
    with db.reading() as s:
        areas, channels = stats.booking_counts(s, cadre, TZ, NOW - timedelta(days=40))
    assert [(c.key, c.count) for c in areas] == [("career", 6)]
    assert [(c.key, c.count) for c in channels] == [("phone", 6)]
    with db.writing() as s:
        counselling.cancel(s, active(db)[0].member_id, active(db)[0].id, NOW, WINDOW)
    with db.reading() as s:
        areas, _channels = stats.booking_counts(s, cadre, TZ, NOW - timedelta(days=40))
    assert [(c.key, c.count) for c in areas] == [("career", 5)]
    with db.writing() as s:
        counselling.cancel(s, active(db)[0].member_id, active(db)[0].id, NOW, WINDOW)
    with db.reading() as s:
        areas, _channels = stats.booking_counts(s, cadre, TZ, NOW - timedelta(days=40))
    assert [(c.key, c.count) for c in areas] == [("career", None)]
    member = Actor(3100, None, False, frozenset(), frozenset())
    with pytest.raises(DomainError), db.reading() as s:
        stats.booking_counts(s, member, TZ, NOW)


async def test_deleting_an_account_erases_bookings_and_requests_personal_data(db):
    key = Fernet.generate_key().decode()
    box = care.sealing.Sealer(key)
    counsellor = await make_counsellor(db, 3000)
    (slot_id,) = await make_slots(db, counsellor, 1)
    member = await make_member(db, 3101)
    with db.writing() as s:
        booking = counselling.book(s, member.id, slot_id, "career", NOW, 2, "13800138000", box.seal("秘密"))
        request = requests.create(s, member, "rights", "wages", "拖欠工资三个月", "下午打电话", None, NOW)
    with db.writing() as s:
        delete_account(s, member.id, NOW, TZ)
    with db.reading() as s:
        stored = s.get(CareBooking, booking.id)
        asked = s.get(CareRequest, request.id)
        notes = s.exec(select(CareRequestStep.note).where(col(CareRequestStep.request_id) == request.id)).all()
    assert (stored.status, stored.phone, stored.member_note) == (BookingStatus.CANCELLED, None, None)
    assert (asked.description, asked.contact, asked.kind) == (None, None, "rights")
    assert notes == [None]
    assert active(db) == []
    # A counsellor who leaves takes their profile and free slots along.
    free = (await make_slots(db, counsellor, 1, NOW + timedelta(days=5)))[-1]
    with db.writing() as s:
        counselling.set_profile(s, counsellor, "资深咨询师", NOW)
    with db.writing() as s:
        delete_account(s, counsellor.member.id, NOW, TZ)
    with db.reading() as s:
        assert s.get(care.CareCounsellor, counsellor.member.id) is None
        assert s.get(CareSlot, free).status == "removed"


def test_sealed_notes_need_the_key():
    key = Fernet.generate_key().decode()
    token = care.sealing.Sealer(key).seal("我很焦虑")
    assert "我很焦虑" not in token and care.sealing.Sealer(key).open(token) == "我很焦虑"
    assert care.sealing.Sealer(Fernet.generate_key().decode()).open(token) is None
    with pytest.raises(DomainError) as disabled:
        care.sealing.Sealer("").seal("x")
    assert disabled.value.key == "care_notes_disabled"


def test_a_care_key_that_is_not_a_fernet_key_stops_the_start(tmp_path):
    with pytest.raises(ConfigError) as bad:
        make_config("sqlite://", tmp_path, CARE_KEY="not-a-key")
    assert bad.value.key == "CARE_KEY"
    key = Fernet.generate_key().decode()
    assert make_config("sqlite://", tmp_path, CARE_KEY=key).care_key == key
    assert make_config("sqlite://", tmp_path).care_key == ""
