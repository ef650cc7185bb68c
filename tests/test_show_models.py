"""Community models on SQLite and PostgreSQL: likes and their anti-farming rules, show moderation, reading
festival check-ins, and both under concurrency (one like, one check-in, points once, ledger equals balance)."""

from __future__ import annotations

import asyncio
import io
import tomllib
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageFont
from sqlmodel import Session, func, select

from config import PROJECT_DIR, CommunitySettings, ConfigError, PointsRule, parse_config
from models import certificate, likes, me, points, reading, show
from models.db import Database
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member, Role, Status
from scheduled import show as weekly
from tests.conftest import NOW

SETTINGS = CommunitySettings(ring_likes_per_week=2, new_member_days=7, show_reports_to_hide=2)
LIKE = PointsRule("like_received", 1, 20)
CHECKIN = PointsRule("reading_checkin", 2, 2)
GOAL = PointsRule("reading_goal", 30, 0)
DAY = date(2026, 11, 28)
LONG_AGO = NOW - timedelta(days=100)


def add_member(session: Session, telegram_id: int, *, registered: datetime = LONG_AGO, unit: str = "i801") -> Member:
    member = Member(
        telegram_id=telegram_id,
        unit_code=unit,
        employee_no=f"E{telegram_id}",
        name=f"成员{telegram_id}",
        status=Status.VERIFIED,
        created_at=registered,
        verified_at=registered,
    )
    session.add(member)
    session.flush()
    return member


def actor(member: Member, *roles: Role) -> Actor:
    cadre = frozenset({None}) if Role.CADRE in roles else frozenset()
    return Actor(member.telegram_id, member, False, cadre, frozenset(roles))


def post_of(session: Session, author: Member, settings: CommunitySettings = SETTINGS) -> int:
    post = show.start_draft(session, author, "music", "歌", "我唱了一首歌", NOW)
    show.publish(session, author, post.id, NOW, settings)
    return post.id


def like(session: Session, liker: Member, post_id: int, at: datetime = NOW) -> show.Toggled:
    return show.set_like(session, actor(liker), post_id, True, at, at.date(), SETTINGS, LIKE)


def balance(session: Session, member: Member) -> int:
    return points.balance_of(session, member.id)


# --- the anti-farming rules ------------------------------------------------------------------------------


def test_a_like_earns_its_author_once_and_taking_it_back_keeps_the_points(db: Database):
    with db.writing() as s:
        author, fan = add_member(s, 1), add_member(s, 2)
        post = post_of(s, author)
        assert like(s, fan, post).result.why == likes.Why.EARNED
        assert like(s, fan, post).result.created is False
        assert balance(s, author) == 1
        show.set_like(s, actor(fan), post, False, NOW, DAY, SETTINGS, LIKE)
        assert s.get(show.ShowPost, post, populate_existing=True).likes == 0
        assert balance(s, author) == 1  # no claw-back
        again = like(s, fan, post)
        assert again.result.why == likes.Why.ALREADY_PAID
        assert balance(s, author) == 1  # liking again never pays twice
        assert s.get(show.ShowPost, post, populate_existing=True).likes == 1


def test_liking_ones_own_post_earns_nothing(db: Database):
    with db.writing() as s:
        author = add_member(s, 1)
        post = post_of(s, author)
        assert like(s, author, post).result.why == likes.Why.SELF
        assert balance(s, author) == 0
        assert s.get(show.ShowPost, post, populate_existing=True).likes == 1


def test_a_new_member_s_likes_earn_nothing_until_they_have_been_here_long_enough(db: Database):
    with db.writing() as s:
        author = add_member(s, 1)
        newcomer = add_member(s, 2, registered=NOW - timedelta(days=6, hours=23))
        first, second = post_of(s, author), post_of(s, author)
        assert like(s, newcomer, first).result.why == likes.Why.NEW_MEMBER
        assert balance(s, author) == 0
        # The same member a few hours later, seven days after registering: their likes count.
        assert like(s, newcomer, second, NOW + timedelta(hours=2)).result.why == likes.Why.EARNED
        assert balance(s, author) == 1


def test_a_ring_of_reciprocal_likes_stops_earning_beyond_the_weekly_number(db: Database):
    with db.writing() as s:
        a, b, c = add_member(s, 1), add_member(s, 2), add_member(s, 3)
        a_posts = [post_of(s, a) for _ in range(4)]
        b_posts = [post_of(s, b) for _ in range(4)]
        c_posts = [post_of(s, c) for _ in range(4)]
        at = NOW
        # A and B like each other's posts, alternately.
        for mine, theirs in zip(a_posts, b_posts, strict=True):
            at += timedelta(minutes=1)
            like(s, b, mine, at)
            like(s, a, theirs, at)
        # Two each way earn (ring_likes_per_week = 2); the third and fourth each way do not.
        assert balance(s, a) == 2 and balance(s, b) == 2
        # A's likes of C's posts are not a ring (C never liked A): all four earn.
        for post in c_posts:
            like(s, a, post, at)
        assert balance(s, c) == 4
        # A week later the pair earns again.
        later = at + timedelta(days=7, minutes=1)
        fresh = post_of(s, b)
        assert like(s, a, fresh, later).result.why == likes.Why.EARNED
        assert balance(s, b) == 3


def test_the_ring_rule_counts_only_likes_within_seven_days(db: Database):
    with db.writing() as s:
        a, b = add_member(s, 1), add_member(s, 2)
        result = likes.why_not_earning(s, a, b.id, NOW, SETTINGS)
        assert result is None
        posts = [post_of(s, b) for _ in range(3)]
        like(s, b, post_of(s, a), NOW - timedelta(days=8))  # B liked A, but more than a week ago
        for post in posts:
            like(s, a, post)
        assert balance(s, b) == 3


def test_the_daily_cap_of_like_received_applies(db: Database):
    small_cap = replace(LIKE, daily_cap=2)
    with db.writing() as s:
        author = add_member(s, 1)
        fans = [add_member(s, 10 + i) for i in range(4)]
        post = post_of(s, author)
        outcomes = [show.set_like(s, actor(f), post, True, NOW, DAY, SETTINGS, small_cap).result.why for f in fans]
        assert outcomes == [likes.Why.EARNED, likes.Why.EARNED, likes.Why.CAPPED, likes.Why.CAPPED]
        assert balance(s, author) == 2


# --- show moderation -----------------------------------------------------------------------------------


def test_reports_hide_a_post_from_everyone_but_its_author_and_the_volunteers(db: Database):
    with db.writing() as s:
        author, r1, r2, volunteer = add_member(s, 1), add_member(s, 2), add_member(s, 3), add_member(s, 4)
        post = post_of(s, author)
        assert show.report(s, r1, post, NOW, SETTINGS) is False
        with pytest.raises(BadInput):
            show.report(s, r1, post, NOW, SETTINGS)
        assert show.report(s, r2, post, NOW, SETTINGS) is True
        with pytest.raises(NotFound):
            show.card(s, actor(r1), post)
        with pytest.raises(NotFound):
            like(s, r1, post)
        assert show.browse(s, actor(r1), show.Order.NEW, 0) is None
        assert show.card(s, actor(author), post).post.status == show.PostStatus.HIDDEN
        mod = actor(volunteer, Role.VOLUNTEER)
        assert [p.id for p in show.queue(s, mod, 10)] == [post]
        with pytest.raises(NotAllowed):
            show.approve(s, actor(r1), post)
        show.approve(s, mod, post)
        assert show.card(s, actor(r1), post).post.status == show.PostStatus.PUBLISHED


def test_premoderation_rejects_with_a_reason_and_only_the_author_sees_it(db: Database):
    settings = replace(SETTINGS, show_premoderation=True)
    with db.writing() as s:
        author, other, volunteer = add_member(s, 1), add_member(s, 2), add_member(s, 3)
        post = post_of(s, author, settings)
        assert s.get(show.ShowPost, post).status == show.PostStatus.PENDING
        with pytest.raises(NotFound):
            show.card(s, actor(other), post)
        with pytest.raises(NotAllowed):
            show.reject(s, actor(author), post, "不行")
        show.reject(s, actor(volunteer, Role.VOLUNTEER), post, "与主题无关")
        assert show.card(s, actor(author), post).post.reject_reason == "与主题无关"
        with pytest.raises(NotFound):
            show.card(s, actor(other), post)
        with pytest.raises(BadInput):
            show.approve(s, actor(volunteer, Role.VOLUNTEER), post)


def test_only_the_author_deletes_a_post(db: Database):
    with db.writing() as s:
        author, other = add_member(s, 1), add_member(s, 2)
        post = post_of(s, author)
        with pytest.raises(NotAllowed):
            show.delete_post(s, actor(other), post)
        show.delete_post(s, actor(author), post)
        with pytest.raises(NotFound):
            show.card(s, actor(author), post)


def test_album_of_four_photos_or_one_short_video(db: Database):
    with db.writing() as s:
        author = add_member(s, 1)
        draft = show.start_draft(s, author, "art", "画", "", NOW).id
        for i in range(4):
            assert show.add_media(s, author, draft, show.MediaKind.PHOTO, f"p{i}", f"u{i}", SETTINGS) == i + 1
        with pytest.raises(BadInput, match="show_album_full"):
            show.add_media(s, author, draft, show.MediaKind.PHOTO, "p5", "u5", SETTINGS)
        with pytest.raises(BadInput, match="show_one_video"):
            show.add_media(s, author, draft, show.MediaKind.VIDEO, "v", "uv", SETTINGS, duration=5)
        video = show.start_draft(s, author, "sport", "跑", "", NOW).id
        with pytest.raises(BadInput, match="show_video_too_long"):
            show.add_media(s, author, video, show.MediaKind.VIDEO, "v", "uv", SETTINGS, duration=999)
        assert show.add_media(s, author, video, show.MediaKind.VIDEO, "v", "uv", SETTINGS, duration=30) == 1
        empty = show.start_draft(s, author, "craft", "空", "", NOW).id
        with pytest.raises(BadInput, match="show_post_empty"):
            show.publish(s, author, empty, NOW, SETTINGS)


# --- reading -------------------------------------------------------------------------------------------


def festival(s: Session, cadre: Member, kind: reading.GoalKind, goal: int) -> reading.Festival:
    return reading.open_festival(s, actor(cadre, Role.CADRE), "读书节", DAY, DAY + timedelta(days=30), kind, goal, NOW)


def test_check_in_once_a_day_with_a_streak_and_the_goal_paid_once(db: Database):
    with db.writing() as s:
        cadre, reader = add_member(s, 1), add_member(s, 2)
        fest = festival(s, cadre, reading.GoalKind.CHECKINS, 3)
        first = reading.check_in(s, reader, "读了三十页", NOW, DAY, CHECKIN, GOAL)
        assert (first.progress.streak, first.points, first.reached) == (1, 2, None)
        with pytest.raises(BadInput, match="reading_checked_in_today"):
            reading.check_in(s, reader, "又读了", NOW, DAY, CHECKIN, GOAL)
        second = reading.check_in(s, reader, "第二天", NOW + timedelta(days=1), DAY + timedelta(days=1), CHECKIN, GOAL)
        assert second.progress.streak == 2
        # A day missed: the streak starts again; the third check-in reaches the goal.
        third = reading.check_in(s, reader, "第四天", NOW + timedelta(days=3), DAY + timedelta(days=3), CHECKIN, GOAL)
        assert third.progress.streak == 1 and third.progress.best_streak == 2
        assert third.reached is not None and third.reached.points == 30
        fourth = reading.check_in(s, reader, "第五天", NOW + timedelta(days=4), DAY + timedelta(days=4), CHECKIN, GOAL)
        assert fourth.reached is None
        assert balance(s, reader) == 4 * 2 + 30
        assert next((u.unit_code, u.reached) for u in reading.unit_shares(s, fest)) == ("i801", 1)


def test_finishing_books_reaches_a_books_goal_and_notes_count_from_the_minimum_length(db: Database):
    with db.writing() as s:
        cadre, reader, fan = add_member(s, 1), add_member(s, 2), add_member(s, 3)
        festival(s, cadre, reading.GoalKind.BOOKS, 2)
        books = [reading.add_book(s, actor(cadre, Role.CADRE), f"书{i}", "作者", "", "", None, NOW) for i in range(2)]
        with pytest.raises(NotAllowed):
            reading.add_book(s, actor(reader), "书", "", "", "", None, NOW)
        assert reading.set_mark(s, reader, books[0].id, reading.Mark.FINISHED, NOW, DAY, GOAL) is None
        # Marking it finished again does not count twice.
        reading.set_mark(s, reader, books[0].id, reading.Mark.READING, NOW, DAY, GOAL)
        assert reading.set_mark(s, reader, books[0].id, reading.Mark.FINISHED, NOW, DAY, GOAL) is None
        reached = reading.set_mark(s, reader, books[1].id, reading.Mark.FINISHED, NOW, DAY, GOAL)
        assert reached is not None and balance(s, reader) == 30
        short = reading.write_note(s, reader, books[0].id, "好书", NOW)
        with pytest.raises(NotFound):
            reading.set_note_like(s, fan, short.id, True, NOW, DAY, SETTINGS, LIKE)
        note = reading.write_note(s, reader, books[0].id, "这本书讲的是" * 10, NOW)
        assert note.id == short.id
        liked, result = reading.set_note_like(s, fan, note.id, True, NOW, DAY, SETTINGS, LIKE)
        assert liked.likes == 1 and result.why == likes.Why.EARNED
        _, own = reading.set_note_like(s, reader, note.id, True, NOW, DAY, SETTINGS, LIKE)
        assert own.why == likes.Why.SELF
        assert balance(s, reader) == 31


def test_leaderboard_leaves_out_members_who_opted_out(db: Database):
    with db.writing() as s:
        cadre, shy, keen = add_member(s, 1), add_member(s, 2), add_member(s, 3, unit="i802")
        fest = festival(s, cadre, reading.GoalKind.CHECKINS, 1)
        shy.ranking_opt_out = True
        for m in (shy, keen):
            reading.check_in(s, m, "读书", NOW, DAY, CHECKIN, GOAL)
        assert [row.name for row in reading.leaders(s, fest, 10)] == [keen.name]
        shares = {u.unit_code: u.percent for u in reading.unit_shares(s, fest)}
        assert shares["i802"] == 100 and shares["i801"] == 50


# --- concurrency ---------------------------------------------------------------------------------------


async def test_concurrent_likes_one_per_member_points_once_and_ledger_equals_balance(db: Database):
    with db.writing() as s:
        author = add_member(s, 1)
        fans = [add_member(s, 100 + i) for i in range(6)]
        post = post_of(s, author)
        fan_ids = [f.id for f in fans]

    def press(session: Session, fan_id: int) -> None:
        fan = session.get(Member, fan_id)
        show.set_like(session, actor(fan), post, True, NOW, DAY, SETTINGS, LIKE)

    # Every fan presses ❤️ three times at once (double clicks, repeated updates).
    await asyncio.gather(*(db.write(press, fan_id) for fan_id in fan_ids * 3))
    with db.reading() as s:
        assert s.get(show.ShowPost, post).likes == len(fans)
        assert s.exec(select(func.count()).select_from(likes.Like)).one() == len(fans)
        assert balance(s, author) == len(fans)
        for member_id in [author.id, *fan_ids]:
            assert points.ledger_sum(s, member_id) == points.balance_of(s, member_id)


async def test_concurrent_check_ins_once_a_day_and_points_once(db: Database):
    with db.writing() as s:
        cadre, reader = add_member(s, 1), add_member(s, 2)
        festival(s, cadre, reading.GoalKind.CHECKINS, 1)
        reader_id = reader.id

    def check(session: Session) -> str:
        try:
            reading.check_in(session, session.get(Member, reader_id), "读书", NOW, DAY, CHECKIN, GOAL)
            return "ok"
        except BadInput as refused:
            return refused.key

    outcomes = await asyncio.gather(*(db.write(check) for _ in range(5)))
    assert sorted(outcomes) == ["ok"] + ["reading_checked_in_today"] * 4
    with db.reading() as s:
        assert balance(s, s.get(Member, reader_id)) == 2 + 30
        assert points.ledger_sum(s, reader_id) == points.balance_of(s, reader_id)
        progress = s.exec(select(reading.Progress)).one()
        assert (progress.checkins, progress.streak) == (1, 1)


# --- configuration, erasure, the certificate, the weekly schedule ----------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("ring_likes_per_week", 0), ("new_member_days", -1), ("show_premoderation", 1), ("show_reports_to_hide", "3")],
)
def test_community_settings_are_checked(key, value):
    raw = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))
    raw["community"][key] = value
    with pytest.raises(ConfigError, match=f"community.{key}"):
        parse_config(raw, {})
    assert parse_config({**raw, "community": {}}, {}).community == CommunitySettings()


def test_deleting_an_account_erases_posts_likes_notes_and_check_ins(db: Database):
    with db.writing() as s:
        cadre, member, fan = add_member(s, 1), add_member(s, 2), add_member(s, 3)
        post = post_of(s, member)
        like(s, fan, post)
        like(s, member, post_of(s, fan))
        festival(s, cadre, reading.GoalKind.CHECKINS, 5)
        reading.check_in(s, member, "读书", NOW, DAY, CHECKIN, GOAL)
        book = reading.add_book(s, actor(cadre, Role.CADRE), "书", "", "", "", None, NOW)
        reading.write_note(s, member, book.id, "笔记" * 20, NOW)
        show.toggle_digest(s, member.id, NOW)
        before = balance(s, member)
        me.delete_account(s, member.id, NOW, ZoneInfo("Asia/Shanghai"))
        for table in (show.ShowPost, reading.Note, reading.Checkin, reading.Progress, show.ShowDigest):
            assert s.exec(select(func.count()).select_from(table)).one() == (1 if table is show.ShowPost else 0)
        assert s.exec(select(func.count()).where(likes.Like.liker_id == member.id)).one() == 0
        # The ledger stays under the anonymised row: totals hold.
        assert points.ledger_sum(s, member.id) == before


def test_the_certificate_leaves_out_what_the_font_cannot_draw():
    dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if not Path(dejavu).is_file():
        pytest.skip("DejaVu Sans is not installed")
    font = ImageFont.truetype(dejavu, 40)
    assert certificate.drawable(font, "Zoë Li") and not certificate.drawable(font, "欧阳娜娜")
    lines = certificate.Lines("Certificate", "欧阳娜娜", "has reached the goal of", "读" * 60, "Union")
    with_name = certificate.draw(replace(lines, name="Zoe Li " * 10), dejavu)
    without = certificate.draw(lines, dejavu)
    assert with_name.startswith(b"\x89PNG") and without.startswith(b"\x89PNG") and with_name != without
    image = Image.open(io.BytesIO(without))
    assert image.size == (certificate.WIDTH, certificate.HEIGHT)


def test_weekly_top_posts_go_out_on_monday_mornings():
    config = parse_config(tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8")), {})
    first = weekly.next_monday(config, NOW)  # Saturday noon in Beijing
    local = first.astimezone(config.timezone)
    assert (local.weekday(), local.hour, local.minute) == (0, 10, 0) and first > NOW
    assert weekly.next_monday(config, first) == first + timedelta(days=7)
