"""Insight figures from a seeded history: four months of members and activity with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models import activity, audit, insight
from models.audience import Audience
from models.feedback import FeedbackMessage, FeedbackThread
from models.insight import Cohort, UnitReach, period_of, shown
from models.members import Member, RosterEntry, Status
from models.surveys.tables import Survey, SurveyParticipation
from models.welfare import ClaimStatus, WelfareClaim, WelfareItem

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 28)  # a Saturday
A, B = "i801", "i802"
NOW_UTC = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def at(day: date, hour: int = 10) -> datetime:
    """A local time on that day, as the database keeps it (UTC)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


# Unit A: verified members by the month they joined, with the local days they were active (any section).
HISTORY = {
    "a1": (date(2026, 8, 5), [date(2026, 9, 3), date(2026, 10, 7)]),
    "a2": (date(2026, 8, 20), [date(2026, 9, 9)]),
    "s1": (date(2026, 9, 1), [date(2026, 10, 2), date(2026, 11, 2), date(2026, 11, 25)]),
    "s2": (date(2026, 9, 15), []),
    "o1": (date(2026, 10, 3), [date(2026, 11, 25)]),
    "o2": (date(2026, 10, 30), [date(2026, 11, 10), date(2026, 11, 12)]),
    "n1": (date(2026, 11, 3), [date(2026, 11, 20), date(2026, 11, 24)]),
    "n2": (date(2026, 11, 16), [date(2026, 11, 27)]),
}
YOUNG = {"a1", "a2", "s1", "o1", "n1"}


@pytest.fixture
def history(db):
    """Unit A: 10 on the roster (6 under 35), 8 verified; unit B: 3 on the roster, 2 verified, 1 waiting."""
    ids: dict[str, int] = {}
    with db.writing() as s:
        for n in range(10):
            s.add(RosterEntry(unit_code=A, employee_no=f"A{n}", name=f"A{n}", birth_year=1995 if n < 6 else 1980))
        for n in range(3):
            s.add(RosterEntry(unit_code=B, employee_no=f"B{n}", name=f"B{n}", birth_year=2000))
        for n, (name, (joined, _)) in enumerate(HISTORY.items()):
            member = Member(
                telegram_id=5000 + n,
                unit_code=A,
                name=name,
                status=Status.VERIFIED,
                birth_year=1995 if name in YOUNG else 1980,
                created_at=at(joined, 8),
                verified_at=at(joined),
            )
            s.add(member)
            s.flush()
            ids[name] = member.id
        for n, (name, status) in enumerate([("x1", Status.VERIFIED), ("x2", Status.VERIFIED), ("x3", Status.PENDING)]):
            member = Member(
                telegram_id=6000 + n,
                unit_code=B,
                name=name,
                status=status,
                birth_year=2000,
                created_at=at(date(2026, 11, 20), 8),
                verified_at=at(date(2026, 11, 20)) if status == Status.VERIFIED else None,
            )
            s.add(member)
            s.flush()
            ids[name] = member.id
    with db.writing() as s:
        notes = [(ids[name], day, "points") for name, (_, days) in HISTORY.items() for day in days]
        notes += [(ids["n2"], date(2026, 11, 27), "welfare"), (ids["x1"], date(2026, 11, 26), "points")]
        activity.record(s, notes)
        # Two registrations approved by a cadre in November: after 2 h (request 08:00, approval 10:00) and 6 h.
        for name, hours in (("n1", 2), ("n2", 6)):
            entry = audit.AuditEntry(actor_telegram_id=1, action="approve_member", target=f"member:{ids[name]}")
            entry.at = at(HISTORY[name][0], 8) + timedelta(hours=hours)
            s.add(entry)
        item = WelfareItem(
            title="电影票",
            mode="first_come",
            stock=7,
            total=10,
            opens_at=at(date(2026, 11, 10)),
            closes_at=at(date(2026, 12, 10)),
            created_by_telegram_id=1,
            status="published",
        )
        s.add(item)
        s.flush()
        for name, status in (("s1", ClaimStatus.ACTIVE), ("o1", ClaimStatus.REDEEMED), ("n1", ClaimStatus.CANCELLED)):
            s.add(WelfareClaim(item_id=item.id, member_id=ids[name], status=status, created_at=at(date(2026, 11, 11))))
        s.add(WelfareClaim(item_id=item.id, member_id=ids["x1"], status=ClaimStatus.ACTIVE))
        thread = FeedbackThread(
            token="t" * 12, unit_code=A, anonymous=True, created_at=at(date(2026, 11, 20)), updated_at=NOW_UTC
        )
        s.add(thread)
        s.flush()
        for day, hour, from_member in ((20, 10, True), (20, 12, False), (21, 9, True), (21, 10, True), (21, 15, False)):
            s.add(
                FeedbackMessage(
                    thread_id=thread.id, from_member=from_member, body="x", created_at=at(date(2026, 11, day), hour)
                )
            )
    return ids


def test_periods_are_local_calendar_spans_up_to_today():
    assert period_of("week", TODAY) == insight.Period("week", date(2026, 11, 23), date(2026, 11, 29))
    assert period_of("month", TODAY) == insight.Period("month", date(2026, 11, 1), date(2026, 11, 29))
    assert period_of("quarter", TODAY) == insight.Period("quarter", date(2026, 9, 1), date(2026, 11, 29))
    assert period_of("quarter", date(2027, 1, 5)).start == date(2026, 11, 1)
    with pytest.raises(ValueError):
        period_of("decade", TODAY)


def test_small_groups_are_hidden_but_nobody_is_shown():
    assert [shown(n) for n in (0, 1, 4, 5, None)] == ["0", "<5", "<5", "5", "–"]
    assert insight.share(3, 4) is None and insight.share(1, 5) == 0.2


def test_reach_per_unit_and_in_total(db, history):
    with db.reading() as s:
        rows = insight.reach(s, [A, B], TODAY)
    assert rows == [
        UnitReach(A, roster=10, verified=8, young_roster=6, young_verified=5),
        UnitReach(B, roster=3, verified=2, young_roster=3, young_verified=2),
        UnitReach("", roster=13, verified=10, young_roster=9, young_verified=7),
    ]
    assert rows[0].registered_share == 0.8 and rows[1].registered_share is None  # 3 on B's roster: too few


def test_interaction_counts_weekly_actives_and_sections(db, history):
    with db.reading() as s:
        week = insight.interaction(s, [A], period_of("week", TODAY), SHANGHAI)
        month = insight.interaction(s, [A], period_of("month", TODAY), SHANGHAI)
        both = insight.interaction(s, [A, B], period_of("week", TODAY), SHANGHAI)
    assert (week.members, week.weekly_active) == (8, 4)  # s1, o1, n1 (11-24) and n2
    assert week.weeks == [(date(2026, 11, 23), 4)]
    assert week.section_days == {"points": 4, "welfare": 1}
    # Weeks from Monday, counted inside the month: the first (10-26) holds only Sunday 11-01, when nobody came.
    assert month.weeks == [
        (date(2026, 10, 26), 0),
        (date(2026, 11, 2), 1),  # s1
        (date(2026, 11, 9), 1),  # o2, twice
        (date(2026, 11, 16), 1),  # n1
        (date(2026, 11, 23), 4),
    ]
    assert month.actions == dict.fromkeys(insight.ACTION_COUNTERS, 0) | {"welfare_claims": 3}
    # The feedback box: three messages from members; replies after 2 h, then 6 h after the first of two waiting.
    assert (month.feedback_messages, month.feedback_reply_hours) == (3, 4.0)
    assert (week.feedback_messages, week.feedback_reply_hours) == (0, None)
    assert (both.members, both.weekly_active) == (10, 5)


def test_stickiness_and_the_cohort_table(db, history):
    with db.reading() as s:
        sticky = insight.stickiness(s, [A], TODAY, SHANGHAI)
    # Active in the last 4 weeks: s1, o1, o2, n1, n2; in 2 of them: s1 (11-02, 11-25) and n1 (11-20, 11-24).
    assert (sticky.active, sticky.sticky) == (5, 2)
    assert sticky.cohorts == [
        Cohort(date(2026, 8, 1), 2, [2, 1, 0]),
        Cohort(date(2026, 9, 1), 2, [1, 1, None]),
        Cohort(date(2026, 10, 1), 2, [2, None, None]),
        Cohort(date(2026, 11, 1), 2, [None, None, None]),
    ]


def test_efficiency_welfare_and_approval_time(db, history):
    with db.reading() as s:
        month = insight.efficiency(s, [A], period_of("month", TODAY), SHANGHAI)
        week = insight.efficiency(s, [A], period_of("week", TODAY), SHANGHAI)
        other = insight.efficiency(s, [B], period_of("month", TODAY), SHANGHAI)
    assert (month.welfare_items, month.welfare_places, month.welfare_claimed) == (1, 10, 2)  # n1 cancelled
    assert (month.approvals, month.approval_hours) == (2, 4.0)
    assert (week.welfare_items, week.approvals, week.approval_hours) == (0, 0, None)
    assert (other.welfare_claimed, other.approvals) == (1, 0)


def test_a_scope_sees_only_its_units(db, history):
    with db.reading() as s:
        only_b = insight.interaction(s, [B], period_of("quarter", TODAY), SHANGHAI)
        sticky_b = insight.stickiness(s, [B], TODAY, SHANGHAI)
    assert (only_b.members, only_b.weekly_active, only_b.section_days) == (2, 1, {"points": 1})
    assert (sticky_b.active, sticky_b.sticky) == (1, 0)
    assert [c.joined for c in sticky_b.cohorts] == [0, 0, 0, 2]


async def test_the_digest_compares_the_week_with_the_one_before(db, history):
    monday = date(2026, 11, 30)
    with db.reading() as s:
        week = insight.digest(s, [A], monday, SHANGHAI)
    # 11-23..11-29: s1, o1, n1, n2 active (n2 in two sections); 11-16..11-22: n1 only; n2 joined 11-16.
    assert [(c.name, c.this_week, c.last_week) for c in week.changes] == [
        ("new_members", 0, 1),
        ("active_members", 4, 1),
        ("member_days", 5, 1),
    ] + [(name, 0, 0) for name in insight.ACTION_COUNTERS]
    assert week.members == 8
    assert week.biggest.name == "member_days"  # 1 -> 5; active members 1 -> 4 is smaller


def test_a_change_among_fewer_than_five_never_stands_out():
    small = insight.Digest(3, [insight.Change("active_members", 4, 1), insight.Change("member_days", 0, 0)])
    assert small.biggest is None


def test_reply_time_is_the_median_wait_per_thread():
    t = datetime(2026, 11, 1, tzinfo=UTC)
    hours = [timedelta(hours=h) for h in range(10)]
    # Thread 1 waits 1 h; thread 2 asks twice then gets one reply after 5 h, and a last question stays open.
    messages = [
        (1, True, t),
        (1, False, t + hours[1]),
        (1, False, t + hours[2]),
        (2, True, t),
        (2, True, t + hours[3]),
        (2, False, t + hours[5]),
        (2, True, t + hours[6]),
    ]
    assert insight.reply_hours(messages) == 3.0
    assert insight.reply_hours([(1, True, t)]) is None


async def test_surveys_count_responses_and_the_response_rate(db, history):
    with db.writing() as s:
        survey = Survey(
            title="食堂满意度",
            audience=Audience(units=(A,)).to_json(),
            opens_at=at(date(2026, 11, 5)),
            closes_at=at(date(2026, 11, 25)),
            created_by=1,
        )
        s.add(survey)
        s.flush()
        for name in ("a1", "s1"):
            s.add(SurveyParticipation(survey_id=survey.id, member_id=history[name]))
    with db.reading() as s:
        month = insight.interaction(s, [A], period_of("month", TODAY), SHANGHAI)
        rate = insight.efficiency(s, [A], period_of("month", TODAY), SHANGHAI)
        other = insight.efficiency(s, [B], period_of("month", TODAY), SHANGHAI)
    assert month.actions["survey_responses"] == 2
    assert rate.extra["survey_responses"] == (2, 8)  # A's eight verified members were invited
    assert other.extra["survey_responses"] == (0, 0)  # the survey was for A only
