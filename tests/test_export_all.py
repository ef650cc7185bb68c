"""Export my data and delete my account across every section: one member with data everywhere, one other member
with data everywhere, a satisfaction rating that must stay unlinked; then a search of every table after deletion."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import JSON, BigInteger, Integer, String, Text, TypeDecorator, cast, func
from sqlmodel import SQLModel, col, select

from models import likes
from models.activity import Activity
from models.audit import AuditEntry
from models.broadcasts import Broadcast, BroadcastAck, BroadcastMute
from models.care import CareBooking, CareCounsellor, CareRequest, CareRequestStep, CareSlot
from models.care.sealing import sealer
from models.clubs import Club, ClubMember
from models.feedback import FeedbackMessage, FeedbackThread, SatisfactionRating, SatisfactionVote
from models.ideas import Idea, IdeaComment
from models.members import Member, Role, RosterEntry, Status
from models.outbox import OutboxMessage
from models.points import LedgerEntry
from models.quizzes import Quiz, QuizAnswer, QuizAttempt, QuizBest, QuizQuestion
from models.reading import Book, BookMark, Checkin, Festival, Note, Progress
from models.runs import Event, Rsvp
from models.show import ShowDigest, ShowMedia, ShowPost, ShowReport
from models.welfare import WelfareClaim, WelfareItem
from tests.conftest import NOW, PG_URL, Bot, make_config, make_member, sqlite_url, start_bot

ME, OTHER = 88012345, 88054321
MY_NAME, MY_NO = "全能者", "ZX9071"
OTHER_NAME, OTHER_NO = "旁观者", "QW4402"
PERIOD = date(2026, 10, 1)
KEY = Fernet.generate_key().decode()
# Texts the member wrote or was told (each must be in their export) and texts of others (none may be).
MINE = [
    "MINE-run",
    "MINE-feedback",
    "REPLY-to-mine",
    "MINE-care-note",
    "MINE-care-request",
    "STEP-told-me",
    "MINE-show",
    "MINE-reading-note",
    "MINE-checkin",
    "MINE-idea",
    "MINE-club",
    "MINE-quiz-title",
]
THEIRS = [
    "THEIRS-feedback",
    "THEIRS-care-note",
    "THEIRS-care-request",
    "THEIRS-show",
    "THEIRS-reading-note",
    "THEIRS-checkin",
    "THEIRS-idea",
    "COUNSELLOR-PRIVATE",
    "RATING-SECRET",
    OTHER_NAME,
    OTHER_NO,
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def kbot(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bot]:
    """The bot with a CARE_KEY, on SQLite, then on PostgreSQL."""
    url = sqlite_url(tmp_path) if request.param == "sqlite" else PG_URL
    async for b in start_bot(make_config(url, tmp_path, CARE_KEY=KEY)):
        yield b


def _life(s, who: Member, peer: Member, tag: str, telegram_id: int) -> None:
    """Rows in every section for `who` (texts tagged `tag`); `peer` is the other member (counsellor, liker...)."""
    box = sealer(KEY)
    n = 1 if tag == "MINE" else 2
    # Broadcasts: `who` authored one (as a cadre), acknowledged it and muted a category.
    sent = Broadcast(
        author_telegram_id=telegram_id,
        source_chat_id=telegram_id,
        source_message_id=7,
        media="text",
        buttons=[],
        status="done",
        progress_chat_id=telegram_id,
        progress_message_id=8,
    )
    s.add(sent)
    s.flush()
    s.add(BroadcastAck(broadcast_id=sent.id, member_id=who.id, at=NOW))
    s.add(BroadcastMute(member_id=who.id, category="club"))
    s.add(
        OutboxMessage(
            chat_id=peer.telegram_id,
            text="",
            kind="broadcast",
            status="sent",
            copy_from_chat_id=telegram_id,
            copy_message_id=7,
        )
    )
    # Clubs: a member of one club.
    club = Club(code=f"c{n}", name=f"{tag}-club")
    s.add(club)
    s.flush()
    s.add(ClubMember(club_id=club.id, member_id=who.id, status="member", joined_at=NOW))
    # Runs: organises one event, answers the peer's (made below by the peer's own life) — here its own event.
    event = Event(
        organiser_id=who.id,
        unit_code="i801",
        title=f"{tag}-run",
        starts_at=NOW + timedelta(days=2),
        place="操场",
        capacity=10,
        going=1,
        checkin_token=f"t{n}",
    )
    s.add(event)
    s.flush()
    s.add(Rsvp(event_id=event.id, member_id=who.id, answer="going", checked_in_at=NOW))
    s.add(Rsvp(event_id=event.id, member_id=peer.id, answer="maybe"))
    # Feedback: an anonymous thread with a cadre's reply, a vote and (apart, unlinked) the rating itself.
    thread = FeedbackThread(
        token=f"f{n}", unit_code="i801", member_id=who.id, anonymous=True, created_at=NOW, updated_at=NOW
    )
    s.add(thread)
    s.flush()
    s.add(FeedbackMessage(thread_id=thread.id, from_member=True, body=f"{tag}-feedback", created_at=NOW))
    s.add(FeedbackMessage(thread_id=thread.id, from_member=False, body=f"REPLY-to-{tag.lower()}", created_at=NOW))
    s.add(SatisfactionVote(member_id=who.id, period=PERIOD))
    s.add(SatisfactionRating(id=f"rating{n}", unit_code="i801", period=PERIOD, score=2, comment="RATING-SECRET"))
    # Quizzes: `who` made a quiz (as a cadre) and took it.
    quiz = Quiz(
        key=f"q{n}",
        title=f"{tag}-quiz-title",
        questions_per_attempt=1,
        seconds_per_question=20,
        attempts_per_day=1,
        status="open",
        opens_at=NOW,
        closes_at=NOW + timedelta(days=1),
        created_by=telegram_id,
        created_at=NOW,
    )
    s.add(quiz)
    s.flush()
    question = QuizQuestion(quiz_id=quiz.id, position=0, text="1+1?", options=["1", "2"], correct=1)
    s.add(question)
    s.flush()
    attempt = QuizAttempt(
        quiz_id=quiz.id,
        member_id=who.id,
        day=NOW.date(),
        number=1,
        question_ids=[question.id],
        shown_at=NOW,
        score=10,
        elapsed_ms=900,
        started_at=NOW,
        finished_at=NOW,
    )
    s.add(attempt)
    s.flush()
    s.add(
        QuizAnswer(
            attempt_id=attempt.id,
            position=0,
            question_id=question.id,
            chosen=1,
            correct=True,
            in_time=True,
            elapsed_ms=900,
        )
    )
    s.add(
        QuizBest(
            quiz_id=quiz.id,
            member_id=who.id,
            unit_code="i801",
            score=10,
            elapsed_ms=900,
            attempt_id=attempt.id,
            achieved_at=NOW,
        )
    )
    # Care: `who` counsels (profile, a slot), booked the peer's slot with a note, asked for aid.
    s.add(CareCounsellor(member_id=who.id, profile=f"{tag}-profile"))
    slot = CareSlot(
        counsellor_id=peer.id,
        starts_at=NOW + timedelta(days=1),
        ends_at=NOW + timedelta(days=1, hours=1),
        channel="phone",
        areas="work",
        status="free",
    )
    s.add(slot)
    s.flush()
    s.add(
        CareBooking(
            slot_id=slot.id,
            member_id=who.id,
            counsellor_id=peer.id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            area="work",
            channel="phone",
            phone=f"139{telegram_id}",
            member_note=box.seal(f"{tag}-care-note"),
            counsellor_note=box.seal("COUNSELLOR-PRIVATE"),
        )
    )
    request = CareRequest(
        member_id=who.id,
        unit_code="i801",
        kind="aid",
        topic="illness",
        description=f"{tag}-care-request",
        contact=f"138{telegram_id}",
        handler_id=peer.id,
    )
    s.add(request)
    s.flush()
    s.add(CareRequestStep(request_id=request.id, status="taken", note=f"STEP-told-{'me' if tag == 'MINE' else 'x'}"))
    # Show: a post with a photo the peer liked; `who` reported a post (its own here: only the row matters).
    post = ShowPost(author_id=who.id, category="photo", title=f"{tag}-show", status="published", likes=1)
    s.add(post)
    s.flush()
    s.add(ShowMedia(post_id=post.id, kind="photo", file_id=f"file-{tag}", file_unique_id=f"u{n}"))
    s.add(likes.Like(kind=likes.Kind.SHOW, target_id=post.id, liker_id=peer.id, author_id=who.id, earned=1))
    s.add(ShowReport(post_id=post.id, member_id=peer.id, created_at=NOW))
    s.add(ShowDigest(member_id=who.id, since=NOW))
    # Reading: a mark, a note, a festival check-in and its progress.
    book = Book(title=f"书{n}")
    festival = Festival(
        title=f"节{n}", starts_on=PERIOD, ends_on=PERIOD + timedelta(days=60), goal_kind="checkins", goal=5
    )
    s.add_all([book, festival])
    s.flush()
    s.add(BookMark(book_id=book.id, member_id=who.id, mark="read", updated_at=NOW))
    s.add(Note(book_id=book.id, member_id=who.id, text=f"{tag}-reading-note", created_at=NOW))
    s.add(Checkin(festival_id=festival.id, member_id=who.id, day=PERIOD, text=f"{tag}-checkin", created_at=NOW))
    s.add(Progress(festival_id=festival.id, member_id=who.id, unit_code="i801", checkins=1, streak=1))
    # Ideas and activity (exported before this issue: they must stay).
    idea = Idea(author_id=who.id, title=f"{tag}-idea", description="d", created_at=NOW, status_at=NOW)
    s.add(idea)
    s.flush()
    s.add(IdeaComment(idea_id=idea.id, member_id=who.id, text="评论", created_at=NOW))
    s.add(Activity(member_id=who.id, day=NOW.date(), section="show"))
    # As a cadre: audited, granted points to the peer, redeemed the peer's voucher, made a welfare item.
    s.add(AuditEntry(actor_telegram_id=telegram_id, action="grant", target=f"member:{peer.id}", detail={}))
    s.add(
        LedgerEntry(
            member_id=peer.id,
            delta=5,
            rule="grant",
            idem_key=f"g{n}",
            actor_telegram_id=telegram_id,
            day=NOW.date(),
        )
    )
    item = WelfareItem(
        title=f"福利{n}",
        mode="first_come",
        opens_at=NOW,
        closes_at=NOW + timedelta(days=1),
        created_by_telegram_id=telegram_id,
    )
    s.add(item)
    s.flush()
    s.add(WelfareClaim(item_id=item.id, member_id=peer.id, status="redeemed", redeemed_by_telegram_id=telegram_id))


async def _people(db) -> tuple[Member, Member]:
    me = await make_member(db, ME, employee_no=MY_NO, name=MY_NAME, role=Role.CADRE)
    other = await make_member(db, OTHER, employee_no=OTHER_NO, name=OTHER_NAME, role=Role.CADRE)
    with db.writing() as s:
        s.add(RosterEntry(unit_code="i801", employee_no=MY_NO, name=MY_NAME))
        _life(s, me, other, "MINE", ME)
        _life(s, other, me, "THEIRS", OTHER)
        # A notice already sent to the other (a cadre) that names the member.
        s.add(OutboxMessage(chat_id=OTHER, text=f"{MY_NAME}（{MY_NO}）申请加入", kind="notice", status="sent"))
    return me, other


async def test_export_has_every_section_with_my_data_only_and_no_rating(kbot):
    await _people(kbot.db)
    user = kbot.user(ME)
    await user.send("/me")
    await user.click("导出我的数据")
    filename, content = user.last.document
    text = content.decode()
    data = json.loads(text)
    assert filename.endswith(".json") and len(content) < 50 * 1024 * 1024
    assert text.startswith('{\n  "member"') and MY_NAME in text  # indented, not escaped
    for mine in MINE:
        assert mine in text, mine
    for theirs in THEIRS:
        assert theirs not in text, theirs
    assert data["broadcasts"]["muted_categories"] == ["club"] and len(data["broadcasts"]["acknowledged"]) == 1
    assert [c["club"] for c in data["clubs"]] == ["MINE-club"]
    runs = data["runs"]
    assert [e["title"] for e in runs["organised"]] == ["MINE-run"] and "checkin_token" not in runs["organised"][0]
    assert [(a["title"], a["answer"], a["checked_in_at"] is not None) for a in runs["answers"]] == [
        ("MINE-run", "going", True),
        ("THEIRS-run", "maybe", False),
    ]
    [thread] = data["feedback"]["threads"]
    assert thread["anonymous"] is True
    assert [(m["from_member"], m["body"]) for m in thread["messages"]] == [
        (True, "MINE-feedback"),
        (False, "REPLY-to-mine"),
    ]
    # Whether they rated, and nothing of what: no score, no rating id, no comment.
    assert data["feedback"]["satisfaction_rated_periods"] == [PERIOD.isoformat()]
    assert "rating1" not in text and 'score": 2' not in text
    quizzes = data["quizzes"]
    assert [(a["quiz"], a["score"], len(a["answers"])) for a in quizzes["attempts"]] == [("MINE-quiz-title", 10, 1)]
    assert [(b["quiz"], b["score"]) for b in quizzes["best_scores"]] == [("MINE-quiz-title", 10)]
    care = data["care"]
    assert [(b["my_note"], b["phone"]) for b in care["bookings"]] == [("MINE-care-note", f"139{ME}")]
    assert "counsellor_note" not in care["bookings"][0] and "member_note" not in care["bookings"][0]
    assert [(r["description"], [st["note"] for st in r["steps"]]) for r in care["requests"]] == [
        ("MINE-care-request", ["STEP-told-me"])
    ]
    assert care["counsellor_profile"] == "MINE-profile" and len(care["counsellor_slots"]) == 1
    show = data["show"]
    assert [(p["title"], [m["file_id"] for m in p["media"]]) for p in show["posts"]] == [("MINE-show", ["file-MINE"])]
    assert [like["points"] for like in show["likes_received"]] == [1] and "liker_id" not in text
    assert len(show["likes_given"]) == 1 and len(show["reports"]) == 1 and show["weekly_digest_since"]
    reading = data["reading"]
    assert [n["text"] for n in reading["notes"]] == ["MINE-reading-note"]
    assert [m["mark"] for m in reading["marks"]] == ["read"]
    assert [c["text"] for c in reading["checkins"]] == ["MINE-checkin"]
    assert [p["checkins"] for p in reading["festival_progress"]] == [1]
    assert [i["title"] for i in data["ideas"]] == ["MINE-idea"] and data["activity"]


def _text_columns(table) -> list:
    """Columns holding text: strings (SQLModel's AutoString too), TEXT, and JSON."""

    def textual(column) -> bool:
        kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
        return isinstance(kind, String | JSON)

    return [c for c in table.columns if textual(c)]


def _found(s, needles: list[str], telegram_id: int) -> list[str]:
    """Every table and text column holding one of the needles (also as JSON escapes), and every integer column
    holding the Telegram id; the roster is the union's own register (re-imported by cadres), not the account's."""
    forms = {n for needle in needles for n in (needle, json.dumps(needle)[1:-1])}
    hits = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name == "roster":
            continue
        for column in _text_columns(table):
            for form in forms:
                n = s.exec(select(func.count()).select_from(table).where(cast(column, Text).contains(form))).one()
                if n:
                    hits.append(f"{table.name}.{column.name} ~ {form}")
        for column in table.columns:
            numeric = isinstance(column.type, Integer | BigInteger)
            if numeric and s.exec(select(func.count()).select_from(table).where(column == telegram_id)).one():
                hits.append(f"{table.name}.{column.name} = telegram id")
    return hits


async def test_after_deletion_nothing_in_any_table_names_the_member(kbot):
    me, other = await _people(kbot.db)
    with kbot.db.reading() as s:
        # The search finds what is there before the deletion (so it can fail).
        before = _found(s, [MY_NAME, MY_NO, str(ME)], ME)
        assert any(h.startswith("member.name") for h in before) and any("audit_log" in h for h in before)
        assert any(h.startswith("outbox.text") for h in before) and any(h.startswith("broadcast.") for h in before)
    user = kbot.user(ME)
    await user.send("/me")
    await user.click("注销账号")
    await user.click("确认注销")
    assert "账号已注销" in user.last.text
    with kbot.db.reading() as s:
        assert _found(s, [MY_NAME, MY_NO, str(ME)], ME) == []
        # The care notes, phone and request text, and the member's own rows elsewhere, are gone.
        booking = s.exec(select(CareBooking).where(col(CareBooking.member_id) == me.id)).one()
        assert (booking.phone, booking.member_note, booking.counsellor_note) == (None, None, None)
        mine = s.exec(select(CareRequest).where(col(CareRequest.member_id) == me.id)).one()
        assert (mine.description, mine.contact) == (None, None)
        for table in (BroadcastAck, BroadcastMute, ClubMember, Rsvp, Note, Checkin, Progress, BookMark, ShowDigest):
            assert s.exec(select(table).where(col(table.member_id) == me.id)).all() == [], table
        assert s.exec(select(ShowPost).where(col(ShowPost.author_id) == me.id)).all() == []
        assert s.exec(select(FeedbackThread).where(col(FeedbackThread.member_id) == me.id)).all() == []
        # The other member keeps everything; the rating stays, unlinked.
        assert s.exec(select(Member).where(col(Member.id) == other.id)).one().name == OTHER_NAME
        assert s.exec(select(ShowPost).where(col(ShowPost.author_id) == other.id)).one().title == "THEIRS-show"
        assert s.exec(select(func.count()).select_from(SatisfactionRating)).one() == 2
        assert s.get(Member, me.id).status == Status.DELETED
