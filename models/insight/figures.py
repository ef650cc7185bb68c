"""Insight (工会数据看板): the union's four problems measured per unit — reach, interaction, stickiness, efficiency.

Every figure is computed from what the sections record (members and the roster, activity records, welfare claims,
the audit log), for a list of units (the cadre's scope) and a period in the organisation's local dates. The
functions return plain counts; hiding groups of fewer than SMALL_GROUP members is the presentation's job
(`shown`), so the CSV, the chat screens and the Mini App hide exactly the same cells.

Sections that come later add their counters to ACTION_COUNTERS and EFFICIENCY_COUNTERS (one line each).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, distinct, func
from sqlmodel import Session, col, select

from models.activity import Activity
from models.audience import YOUNG_AGE
from models.audience import conditions as audience_conditions
from models.audit import AuditEntry
from models.broadcasts import KIND_PREFIX as BROADCAST_KIND
from models.broadcasts import BroadcastAck
from models.care.tables import CareBooking, CareRequest
from models.clubs import ClubMember
from models.feedback import FeedbackMessage, FeedbackThread
from models.ideas import Idea, IdeaComment, IdeaUpvote
from models.members import Member, RosterEntry, Status
from models.outbox import OutboxMessage
from models.outbox import Status as OutboxStatus
from models.quizzes import QuizAttempt
from models.runs import Answer, Event, Kind, Rsvp
from models.surveys.tables import Survey, SurveyParticipation, SurveyStatus
from models.welfare import ClaimStatus, WelfareClaim, WelfareItem, WelfareItemUnit

# Numbers about fewer members than this are shown as "<5" (but 0 is shown: it tells about nobody).
SMALL_GROUP = 5
PERIODS = ("week", "month", "quarter")
AREAS = ("reach", "interaction", "stickiness", "efficiency")
# Stickiness: members active in at least STICKY_WEEKS of the last LOOKBACK_WEEKS weeks.
STICKY_WEEKS = 2
LOOKBACK_WEEKS = 4
# Cohort table: the last COHORTS months of new members, followed for RETENTION_MONTHS months.
COHORTS = 4
RETENTION_MONTHS = 3
# Claims that did not end in a member getting the item.
UNCLAIMED = (ClaimStatus.CANCELLED, ClaimStatus.RELEASED, ClaimStatus.LOST)


def shown(count: int | None) -> str:
    """A member count as every output shows it: "<5" for a group of 1 to 4 members, "–" for no figure."""
    if count is None:
        return "–"
    return f"<{SMALL_GROUP}" if 0 < count < SMALL_GROUP else str(count)


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when the whole is empty or too small to show (so a share never reveals a small group)."""
    if whole < SMALL_GROUP or part < 0:
        return None
    return part / whole


@dataclass(frozen=True)
class Period:
    """Local dates [start, end) — "this week" and "this month" end today (inclusive), the quarter too."""

    key: str
    start: date
    end: date

    def utc(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The period's bounds as UTC instants (local midnights)."""
        return midnight(self.start, tz), midnight(self.end, tz)


def midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    """The first of the month `months` after day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(key: str, today: date) -> Period:
    """This week (from Monday), this month, or the last three calendar months (this one included), up to today."""
    end = today + timedelta(days=1)
    if key == "week":
        return Period(key, today - timedelta(days=today.weekday()), end)
    if key == "month":
        return Period(key, today.replace(day=1), end)
    if key == "quarter":
        return Period(key, _add_months(today, -2), end)
    raise ValueError(key)


# --- reach ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitReach:
    """One unit's (or, with unit "", the scope's) registration against the roster."""

    unit: str
    roster: int
    verified: int
    young_roster: int
    young_verified: int

    @property
    def registered_share(self) -> float | None:
        return share(self.verified, self.roster)

    @property
    def young_share(self) -> float | None:
        return share(self.young_verified, self.young_roster)


def reach(session: Session, units: Sequence[str], today: date) -> list[UnitReach]:
    """Per unit: roster size, verified members, and the same for members under 35; the total comes last."""
    young_from = today.year - YOUNG_AGE + 1
    roster = dict(
        session.exec(
            select(RosterEntry.unit_code, func.count())
            .where(col(RosterEntry.unit_code).in_(units))
            .group_by(col(RosterEntry.unit_code))
        ).all()
    )
    young_roster = dict(
        session.exec(
            select(RosterEntry.unit_code, func.count())
            .where(col(RosterEntry.unit_code).in_(units), col(RosterEntry.birth_year) >= young_from)
            .group_by(col(RosterEntry.unit_code))
        ).all()
    )
    verified = {
        unit: (total, young)
        for unit, total, young in session.exec(
            select(
                Member.unit_code,
                func.count(),
                func.count().filter(col(Member.birth_year) >= young_from),
            )
            .where(col(Member.unit_code).in_(units), col(Member.status) == Status.VERIFIED)
            .group_by(col(Member.unit_code))
        ).all()
    }
    rows = [
        UnitReach(u, roster.get(u, 0), verified.get(u, (0, 0))[0], young_roster.get(u, 0), verified.get(u, (0, 0))[1])
        for u in units
    ]
    total = UnitReach(
        "",
        sum(r.roster for r in rows),
        sum(r.verified for r in rows),
        sum(r.young_roster for r in rows),
        sum(r.young_verified for r in rows),
    )
    return [*rows, total]


@dataclass(frozen=True)
class BroadcastReach:
    """Broadcast copies addressed to members in scope in the period, and what became of them."""

    recipients: int
    delivered: int
    blocked: int
    acknowledged: int
    young_recipients: int
    young_delivered: int
    young_acknowledged: int


def broadcast_reach(session: Session, units: Sequence[str], period: Period, today: date, tz: tzinfo) -> BroadcastReach:
    """Copies of broadcasts queued for members in scope in the period: delivered, blocked, acknowledged ("Got it"),
    overall and for members under 35."""
    since, until = period.utc(tz)
    young = col(Member.birth_year) >= today.year - YOUNG_AGE + 1
    copies = (
        select(
            func.count(),
            func.count().filter(col(OutboxMessage.status) == OutboxStatus.SENT),
            func.count().filter(col(OutboxMessage.status) == OutboxStatus.BLOCKED),
            func.count().filter(young),
            func.count().filter(young, col(OutboxMessage.status) == OutboxStatus.SENT),
        )
        .select_from(OutboxMessage)
        .join(Member, col(Member.id) == col(OutboxMessage.member_id))
        .where(
            col(OutboxMessage.kind).startswith(BROADCAST_KIND),
            col(OutboxMessage.created_at) >= since,
            col(OutboxMessage.created_at) < until,
            col(Member.unit_code).in_(units),
        )
    )
    recipients, delivered, blocked, young_recipients, young_delivered = session.exec(copies).one()
    acks = (
        select(func.count(), func.count().filter(young))
        .select_from(BroadcastAck)
        .join(Member, col(Member.id) == col(BroadcastAck.member_id))
        .where(col(BroadcastAck.at) >= since, col(BroadcastAck.at) < until, col(Member.unit_code).in_(units))
    )
    acknowledged, young_acknowledged = session.exec(acks).one()
    return BroadcastReach(
        int(recipients),
        int(delivered),
        int(blocked),
        int(acknowledged),
        int(young_recipients),
        int(young_delivered),
        int(young_acknowledged),
    )


# --- interaction ----------------------------------------------------------------------------------------------


def _active(units: Sequence[str]) -> Any:
    """SELECT over activity rows of verified members of these units (add the day range)."""
    return (
        select(Activity)
        .join(Member, col(Member.id) == col(Activity.member_id))
        .where(col(Member.unit_code).in_(units), col(Member.status) == Status.VERIFIED)
    )


def active_members(session: Session, units: Sequence[str], start: date, end: date) -> int:
    """Members who did anything (sent or pressed) between the local dates [start, end)."""
    query = (
        select(func.count(distinct(col(Activity.member_id))))
        .join(Member, col(Member.id) == col(Activity.member_id))
        .where(
            col(Member.unit_code).in_(units),
            col(Member.status) == Status.VERIFIED,
            col(Activity.day) >= start,
            col(Activity.day) < end,
        )
    )
    return int(session.exec(query).one())


def weekly_active(session: Session, units: Sequence[str], period: Period) -> list[tuple[date, int]]:
    """Active members per week (weeks from Monday, counted inside the period) that the period touches."""
    weeks = []
    monday = period.start - timedelta(days=period.start.weekday())
    while monday < period.end:
        start, end = max(monday, period.start), min(monday + timedelta(days=7), period.end)
        weeks.append((monday, active_members(session, units, start, end)))
        monday += timedelta(days=7)
    return weeks


# Counters of what members did in a section, for "actions per section": name -> count(session, units, from, to)
# over UTC instants. Welfare is here; later sections add one line each (survey responses, run RSVPs, ...).
Counter = Callable[[Session, Sequence[str], datetime, datetime], int]


def member_events(member_column: Any, at_column: Any) -> Counter:
    """A counter of rows made by members in scope between two instants: `member_column` names the member (a
    column of the row's table), `at_column` when it happened."""

    def count(session: Session, units: Sequence[str], since: datetime, until: datetime) -> int:
        query = (
            select(func.count())
            .select_from(member_column.table)
            .join(Member, col(Member.id) == member_column)
            .where(col(Member.unit_code).in_(units), at_column >= since, at_column < until)
        )
        return int(session.exec(query).one())

    return count


ACTION_COUNTERS: dict[str, Counter] = {
    "welfare_claims": member_events(col(WelfareClaim.member_id), col(WelfareClaim.created_at)),
    "ideas": member_events(col(Idea.author_id), col(Idea.created_at)),
    "idea_upvotes": member_events(col(IdeaUpvote.member_id), col(IdeaUpvote.created_at)),
    "idea_comments": member_events(col(IdeaComment.member_id), col(IdeaComment.created_at)),
    "quiz_attempts": member_events(col(QuizAttempt.member_id), col(QuizAttempt.started_at)),
    "run_rsvps": member_events(col(Rsvp.member_id), col(Rsvp.updated_at)),
    "club_joins": member_events(col(ClubMember.member_id), col(ClubMember.joined_at)),
    "broadcast_acks": member_events(col(BroadcastAck.member_id), col(BroadcastAck.at)),
    # Counts only, like every figure here, and shown as "<5" when small: never who, when or with whom.
    "counselling_bookings": member_events(col(CareBooking.member_id), col(CareBooking.created_at)),
    "help_requests": member_events(col(CareRequest.member_id), col(CareRequest.created_at)),
}


def _surveys_opened(session: Session, since: datetime, until: datetime) -> list[Survey]:
    return list(
        session.exec(
            select(Survey).where(
                col(Survey.status) == SurveyStatus.PUBLISHED,
                col(Survey.opens_at) >= since,
                col(Survey.opens_at) < until,
            )
        ).all()
    )


def _survey_responses(session: Session, units: Sequence[str], since: datetime, until: datetime) -> int:
    """Responses from members in scope to the surveys that opened in the period (participation has no time, by
    design: an anonymous answer must not be datable to its member)."""
    ids = [s.id for s in _surveys_opened(session, since, until)]
    if not ids:
        return 0
    query = (
        select(func.count())
        .select_from(SurveyParticipation)
        .join(Member, col(Member.id) == col(SurveyParticipation.member_id))
        .where(col(SurveyParticipation.survey_id).in_(ids), col(Member.unit_code).in_(units))
    )
    return int(session.exec(query).one())


ACTION_COUNTERS["survey_responses"] = _survey_responses


def _feedback(session: Session, units: Sequence[str], since: datetime, until: datetime) -> list[tuple[int, bool, Any]]:
    """(thread, written by the member, when) of the feedback messages to these units' cadres in the period, by
    thread and time (counted by the thread's unit: an anonymous thread names no member)."""
    rows = session.exec(
        select(FeedbackMessage.thread_id, FeedbackMessage.from_member, FeedbackMessage.created_at)
        .join(FeedbackThread, col(FeedbackThread.id) == col(FeedbackMessage.thread_id))
        .where(
            col(FeedbackThread.unit_code).in_(units),
            col(FeedbackMessage.created_at) >= since,
            col(FeedbackMessage.created_at) < until,
        )
        .order_by(col(FeedbackMessage.thread_id), col(FeedbackMessage.created_at))
    ).all()
    return [(thread, from_member, _aware(at)) for thread, from_member, at in rows]


def reply_hours(messages: list[tuple[int, bool, Any]]) -> float | None:
    """The median time from a member's message to the cadres' next reply in its thread (None: no reply yet)."""
    waits, waiting_since, thread_of = [], None, None
    for thread, from_member, at in messages:
        if thread != thread_of:
            thread_of, waiting_since = thread, None
        if from_member:
            waiting_since = waiting_since or at
        elif waiting_since is not None:
            waits.append((at - waiting_since).total_seconds() / 3600)
            waiting_since = None
    return statistics.median(waits) if waits else None


@dataclass(frozen=True)
class Interaction:
    members: int  # verified members in scope (the denominator)
    weekly_active: int  # active in the last 7 days of the period
    weeks: list[tuple[date, int]]
    section_days: dict[str, int]  # member-days of activity per section in the period
    actions: dict[str, int]  # what ACTION_COUNTERS count in the period
    feedback_messages: int = 0  # members' messages to the feedback box
    feedback_reply_hours: float | None = None  # median wait for a cadre's reply


def interaction(session: Session, units: Sequence[str], period: Period, tz: tzinfo) -> Interaction:
    """Who was active, week by week and per section, and what they did."""
    members = session.exec(
        select(func.count()).where(col(Member.unit_code).in_(units), col(Member.status) == Status.VERIFIED)
    ).one()
    last_week = active_members(session, units, period.end - timedelta(days=7), period.end)
    sections = dict(
        session.exec(
            select(Activity.section, func.count())
            .join(Member, col(Member.id) == col(Activity.member_id))
            .where(
                col(Member.unit_code).in_(units),
                col(Member.status) == Status.VERIFIED,
                col(Activity.day) >= period.start,
                col(Activity.day) < period.end,
            )
            .group_by(col(Activity.section))
        ).all()
    )
    since, until = period.utc(tz)
    actions = {name: count(session, units, since, until) for name, count in ACTION_COUNTERS.items()}
    feedback = _feedback(session, units, since, until)
    return Interaction(
        int(members),
        last_week,
        weekly_active(session, units, period),
        sections,
        actions,
        sum(1 for _, from_member, _ in feedback if from_member),
        reply_hours(feedback),
    )


# --- stickiness -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    month: date  # first day of the month the members were verified in
    joined: int
    # Of them, how many were active in month +1, +2, +3 (None: that month has not begun).
    retained: list[int | None] = field(default_factory=list)


@dataclass(frozen=True)
class Stickiness:
    active: int  # active in any of the last 4 weeks
    sticky: int  # active in at least 2 of them
    cohorts: list[Cohort]


def stickiness(session: Session, units: Sequence[str], today: date, tz: tzinfo) -> Stickiness:
    """Members active in at least 2 of the last 4 weeks (7-day windows ending today), and monthly cohorts."""
    end = today + timedelta(days=1)
    bounds = [end - timedelta(days=7 * k) for k in range(1, LOOKBACK_WEEKS + 1)]
    window = case(*[(col(Activity.day) >= b, i) for i, b in enumerate(bounds)], else_=LOOKBACK_WEEKS)
    per_member = (
        select(Activity.member_id, func.count(distinct(window)).label("weeks"))
        .join(Member, col(Member.id) == col(Activity.member_id))
        .where(
            col(Member.unit_code).in_(units),
            col(Member.status) == Status.VERIFIED,
            col(Activity.day) >= bounds[-1],
            col(Activity.day) < end,
        )
        .group_by(col(Activity.member_id))
        .subquery()
    )
    active, sticky = session.exec(
        select(func.count(), func.count().filter(per_member.c.weeks >= STICKY_WEEKS)).select_from(per_member)
    ).one()
    return Stickiness(int(active), int(sticky), cohorts(session, units, today, tz))


def cohorts(session: Session, units: Sequence[str], today: date, tz: tzinfo) -> list[Cohort]:
    """For each of the last COHORTS months (this one included): members verified then, and how many of them were
    active in each of the following RETENTION_MONTHS months."""
    this_month = today.replace(day=1)
    table = []
    for back in range(COHORTS - 1, -1, -1):
        month = _add_months(this_month, -back)
        since, until = midnight(month, tz), midnight(_add_months(month, 1), tz)
        joined_where = (
            col(Member.unit_code).in_(units),
            col(Member.status) == Status.VERIFIED,
            col(Member.verified_at) >= since,
            col(Member.verified_at) < until,
        )
        joined = session.exec(select(func.count()).where(*joined_where)).one()
        retained: list[int | None] = []
        for ahead in range(1, RETENTION_MONTHS + 1):
            start = _add_months(month, ahead)
            if start > today:
                retained.append(None)
                continue
            query = (
                select(func.count(distinct(col(Activity.member_id))))
                .join(Member, col(Member.id) == col(Activity.member_id))
                .where(*joined_where, col(Activity.day) >= start, col(Activity.day) < _add_months(start, 1))
            )
            retained.append(int(session.exec(query).one()))
        table.append(Cohort(month, int(joined), retained))
    return table


# --- efficiency -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Efficiency:
    welfare_items: int  # items that opened in the period, offered to the scope
    welfare_places: int  # their places (items without a limit are not counted here)
    welfare_claimed: int  # claims by members in scope on those items that did not end cancelled or lost
    approvals: int  # registrations a cadre approved in the period
    approval_hours: float | None  # their mean time from request to approval
    extra: dict[str, tuple[int, int]] = field(default_factory=dict)  # EFFICIENCY_COUNTERS: name -> (done, out of)


# Later sections add "name -> (done, out of)" counters here: survey responses / invited, run attendance / RSVPs,
# broadcast deliveries / messages sent.
RatioCounter = Callable[[Session, Sequence[str], datetime, datetime], tuple[int, int]]


def _run_attendance(session: Session, units: Sequence[str], since: datetime, until: datetime) -> tuple[int, int]:
    """Of the members in scope who said Going to a run or club event that started in the period, how many came."""
    query = (
        select(func.count().filter(col(Rsvp.checked_in_at).is_not(None)), func.count())
        .select_from(Rsvp)
        .join(Event, col(Event.id) == col(Rsvp.event_id))
        .join(Member, col(Member.id) == col(Rsvp.member_id))
        .where(
            col(Rsvp.answer) == Answer.GOING,
            col(Event.kind).in_((Kind.RUN, Kind.CLUB)),
            col(Event.starts_at) >= since,
            col(Event.starts_at) < until,
            col(Member.unit_code).in_(units),
        )
    )
    came, going = session.exec(query).one()
    return int(came), int(going)


def _broadcast_delivery(session: Session, units: Sequence[str], since: datetime, until: datetime) -> tuple[int, int]:
    """Broadcast copies delivered, of those queued for members in scope in the period."""
    query = (
        select(func.count().filter(col(OutboxMessage.status) == OutboxStatus.SENT), func.count())
        .select_from(OutboxMessage)
        .join(Member, col(Member.id) == col(OutboxMessage.member_id))
        .where(
            col(OutboxMessage.kind).startswith(BROADCAST_KIND),
            col(OutboxMessage.created_at) >= since,
            col(OutboxMessage.created_at) < until,
            col(Member.unit_code).in_(units),
        )
    )
    delivered, queued = session.exec(query).one()
    return int(delivered), int(queued)


def _survey_response_rate(session: Session, units: Sequence[str], since: datetime, until: datetime) -> tuple[int, int]:
    """Responses against invited members in scope, over the surveys that opened in the period."""
    responded = _survey_responses(session, units, since, until)
    invited = 0
    for survey in _surveys_opened(session, since, until):
        where = audience_conditions(survey.target, since.date())
        query = select(func.count()).where(*where, col(Member.unit_code).in_(units))
        invited += int(session.exec(query).one())
    return responded, invited


EFFICIENCY_COUNTERS: dict[str, RatioCounter] = {
    "survey_responses": _survey_response_rate,
    "run_attendance": _run_attendance,
    "broadcast_delivery": _broadcast_delivery,
}


def efficiency(session: Session, units: Sequence[str], period: Period, tz: tzinfo) -> Efficiency:
    """Welfare offered vs claimed, and how long registrations wait for a cadre, in the period."""
    since, until = period.utc(tz)
    offered_here = select(WelfareItemUnit.item_id).where(col(WelfareItemUnit.unit_code).in_(units)).scalar_subquery()
    open_to_all = ~select(WelfareItemUnit.item_id).where(col(WelfareItemUnit.item_id) == col(WelfareItem.id)).exists()
    items = select(WelfareItem.id, WelfareItem.total).where(
        col(WelfareItem.status).in_(("published", "closed")),
        col(WelfareItem.opens_at) >= since,
        col(WelfareItem.opens_at) < until,
        open_to_all | col(WelfareItem.id).in_(offered_here),
    )
    rows = session.exec(items).all()
    ids = [item_id for item_id, _ in rows]
    claimed = 0
    if ids:
        claimed = session.exec(
            select(func.count())
            .select_from(WelfareClaim)
            .join(Member, col(Member.id) == col(WelfareClaim.member_id))
            .where(
                col(WelfareClaim.item_id).in_(ids),
                col(Member.unit_code).in_(units),
                col(WelfareClaim.status).not_in(UNCLAIMED),
            )
        ).one()
    approved = session.exec(
        select(AuditEntry.target, AuditEntry.at).where(
            col(AuditEntry.action) == "approve_member", col(AuditEntry.at) >= since, col(AuditEntry.at) < until
        )
    ).all()
    approved_at = {int(target.partition(":")[2]): at for target, at in approved if target.startswith("member:")}
    requested = session.exec(
        select(Member.id, Member.created_at).where(
            col(Member.id).in_(list(approved_at)), col(Member.unit_code).in_(units)
        )
    ).all()
    approvals = [(approved_at[member_id], created) for member_id, created in requested]
    waits = [(_aware(at) - _aware(created)).total_seconds() / 3600 for at, created in approvals]
    extra = {name: count(session, units, since, until) for name, count in EFFICIENCY_COUNTERS.items()}
    return Efficiency(
        len(ids),
        sum(total or 0 for _, total in rows),
        int(claimed),
        len(waits),
        sum(waits) / len(waits) if waits else None,
        extra,
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
