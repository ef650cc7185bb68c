"""Broadcasts (宣传与通知): a cadre's own message, kept where it was written and copied to an audience.

A broadcast is a row pointing at the cadre's original message (chat id + message id); members receive it through
the outbox as a copyMessage, so formatting and media arrive exactly as written. Sending queues one outbox row per
recipient with the dedupe key ``bc:<broadcast>:<member>``: a member never gets the same broadcast twice, whoever
presses Send twice and whatever restarts. The outbox kind ``broadcast:<id>`` groups the rows for progress,
cancellation and the report. Status moves draft -> (scheduled <-> paused) -> sending -> done, or to cancelled /
discarded; every move is a conditional UPDATE on the status it expects, so a double press changes nothing.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Text, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from models import audience as audiences
from models import clubs, outbox
from models.audience import Audience, AudienceCount
from models.clock import utcnow
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member
from models.outbox import OutboxMessage

# At most this many link buttons under a broadcast (the ack button comes on top of them).
MAX_BUTTONS = 3
LABEL_MAX = 40
URL_MAX = 500
# What a cadre may send: what copyMessage copies as one message and members can read without a special client.
MEDIA = ("text", "photo", "video", "document", "animation", "audio", "voice")
KIND_PREFIX = "broadcast:"
# Posts into club groups are outbox rows of their own kind: they are not members, so not in progress or report.
GROUP_KIND_PREFIX = "broadcast_group:"
# Roles an audience may name (cadres and volunteers; the roles of models/members.Role).
ROLES = ("cadre", "volunteer")
# Broadcasts listed by /scheduled.
LIST_SIZE = 10
# What members may mute in /me (a mandatory broadcast ignores mutes; the first is the default category).
CATEGORIES = ("union_news", "club_news", "welfare")
# Recurring rules: every weekday (Mon-Fri), weekly on the first run's weekday, monthly on its day of the month.
REPEATS = ("weekdays", "weekly", "monthly")
# A recurring broadcast may run for at most this long.
REPEAT_MAX_DAYS = 366
# The "Got it" button in one language: (broadcast id, locale) -> (callback data, label).
AckFn = Callable[[int, str], tuple[str, str]]


class BroadcastStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PAUSED = "paused"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"
    DISCARDED = "discarded"


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'scheduled', 'paused', 'sending', 'done', 'cancelled', 'discarded')",
            name="ck_broadcast_status_known",
        ),
        CheckConstraint("recipients >= 0 AND skipped_blocked >= 0", name="ck_broadcast_counts_nonneg"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The cadre who wrote it (config admins may have no member row, so the Telegram id).
    author_telegram_id: int = Field(sa_type=BigInteger, index=True)
    source_chat_id: int = Field(sa_type=BigInteger)
    source_message_id: int = Field(sa_type=BigInteger)
    media: str = Field(max_length=12)
    buttons: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    audience: str = Field(default="{}", sa_type=Text)
    ack: bool = False
    urgent: bool = False
    category: str = Field(default=CATEGORIES[0], max_length=20)
    # Reaches members who muted its category too (bureau cadres only).
    mandatory: bool = False
    status: str = Field(default=BroadcastStatus.DRAFT, max_length=10, index=True)
    send_at: datetime | None = Field(default=None, index=True)
    # A recurring broadcast: REPEATS rule and the last local day it may run; each run is a child row (parent_id).
    repeat: str = Field(default="", max_length=10)
    repeat_until: date | None = None
    parent_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    # Clubs whose linked Telegram groups also get the post (the outbox paces groups at 20 a minute), and whether
    # the post is pinned there once delivered.
    groups: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pin: bool = False
    recipients: int = 0
    skipped_blocked: int = 0
    # The cadre's confirmation message, edited in place with the live progress.
    progress_chat_id: int | None = Field(default=None, sa_type=BigInteger)
    progress_message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    queued_at: datetime | None = None
    finished_at: datetime | None = None


class BroadcastAck(SQLModel, table=True):
    """A member pressed "收到 / Got it" on a broadcast: once per member (the primary key)."""

    __tablename__ = "broadcast_ack"

    broadcast_id: int = Field(foreign_key="broadcast.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)
    at: datetime = Field(default_factory=utcnow)


class BroadcastMute(SQLModel, table=True):
    """A member does not want broadcasts of this category (unless they are mandatory)."""

    __tablename__ = "broadcast_mute"

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    category: str = Field(primary_key=True, max_length=20)


@dataclass(frozen=True)
class QuietHours:
    """Ordinary broadcasts wait outside these local hours (start > end spans midnight)."""

    start: time
    end: time
    tz: ZoneInfo

    def until(self, now: datetime) -> datetime | None:
        """The end of the quiet period `now` falls in (aware UTC), or None outside quiet hours."""
        local = now.astimezone(self.tz)
        clock = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return None
        spans_midnight = self.start > self.end
        inside = (clock >= self.start or clock < self.end) if spans_midnight else self.start <= clock < self.end
        if not inside:
            return None
        end_day = local.date() + timedelta(days=1) if spans_midnight and clock >= self.start else local.date()
        return datetime.combine(end_day, self.end, self.tz).astimezone(now.tzinfo)


@dataclass(frozen=True)
class Progress:
    recipients: int
    delivered: int
    pending: int
    blocked: int
    failed: int
    cancelled: int
    skipped_blocked: int

    @property
    def finished(self) -> int:
        return self.delivered + self.blocked + self.failed + self.cancelled

    @property
    def percent(self) -> int:
        return 100 if self.recipients == 0 else min(100, self.finished * 100 // self.recipients)


@dataclass(frozen=True)
class UnitLine:
    """One row of a broadcast's report."""

    unit: str
    recipients: int
    delivered: int
    blocked: int
    failed: int
    acknowledged: int
    young_recipients: int
    young_delivered: int

    @property
    def young_share(self) -> int | None:
        """Per cent of the unit's under-35 recipients it reached (None when it had none)."""
        return None if self.young_recipients == 0 else self.young_delivered * 100 // self.young_recipients


def kind_of(broadcast_id: int) -> str:
    """The outbox kind of one broadcast's rows."""
    return f"{KIND_PREFIX}{broadcast_id}"


def group_kind_of(broadcast_id: int) -> str:
    """The outbox kind of one broadcast's posts into club groups."""
    return f"{GROUP_KIND_PREFIX}{broadcast_id}"


def dedupe_key(broadcast_id: int, member_id: int) -> str:
    """Once per member per broadcast (the outbox's UNIQUE dedupe key)."""
    return f"bc:{broadcast_id}:{member_id}"


# --- composing -----------------------------------------------------------------------------------------


def start_draft(session: Session, actor: Actor, chat_id: int, message_id: int, media: str, now: datetime) -> Broadcast:
    """The cadre's message becomes a draft broadcast (audience: everyone in their scope)."""
    actor.require_cadre()
    if media not in MEDIA:
        raise BadInput("broadcast_unsupported")
    draft = Broadcast(
        author_telegram_id=actor.telegram_id,
        source_chat_id=chat_id,
        source_message_id=message_id,
        media=media,
        audience=Audience().to_json(),
        created_at=now,
    )
    session.add(draft)
    session.flush()
    return draft


def get(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """A broadcast this cadre may manage: their own, or any for a bureau cadre; NotFound / NotAllowed otherwise."""
    actor.require_cadre()
    found = session.get(Broadcast, broadcast_id)
    if found is None or found.status == BroadcastStatus.DISCARDED:
        raise NotFound()
    if found.author_telegram_id != actor.telegram_id and not actor.is_bureau:
        raise NotAllowed()
    return found


def _draft(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    found = get(session, actor, broadcast_id)
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    return found


def parse_buttons(text: str) -> list[dict[str, str]]:
    """Lines of `label | https://...` (at most MAX_BUTTONS); BadInput naming what is wrong."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > MAX_BUTTONS:
        raise BadInput("broadcast_too_many_buttons", limit=MAX_BUTTONS)
    parsed = []
    for line in lines:
        label, bar, url = (part.strip() for part in line.partition("|"))
        if not bar or not label or not url:
            raise BadInput("broadcast_button_format")
        if len(label) > LABEL_MAX:
            raise BadInput("broadcast_button_label", limit=LABEL_MAX)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or len(url) > URL_MAX or any(c.isspace() for c in url):
            raise BadInput("broadcast_button_url")
        parsed.append({"label": label, "url": url})
    return parsed


def set_buttons(session: Session, actor: Actor, broadcast_id: int, text: str) -> Broadcast:
    """Replace the draft's link buttons (an empty text removes them)."""
    draft = _draft(session, actor, broadcast_id)
    draft.buttons = parse_buttons(text) if text.strip() else []
    return draft


def toggle_ack(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """Add or remove the "收到 / Got it" button."""
    draft = _draft(session, actor, broadcast_id)
    draft.ack = not draft.ack
    return draft


def toggle_urgent(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """Urgent broadcasts ignore quiet hours: bureau cadres only."""
    draft = _draft(session, actor, broadcast_id)
    if not actor.is_bureau:
        raise NotAllowed()
    draft.urgent = not draft.urgent
    return draft


def toggle_mandatory(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """Mandatory broadcasts reach members who muted their category: bureau cadres only."""
    draft = _draft(session, actor, broadcast_id)
    if not actor.is_bureau:
        raise NotAllowed()
    draft.mandatory = not draft.mandatory
    return draft


def next_category(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """The draft's category: the next one of CATEGORIES."""
    draft = _draft(session, actor, broadcast_id)
    index = CATEGORIES.index(draft.category) if draft.category in CATEGORIES else -1
    draft.category = CATEGORIES[(index + 1) % len(CATEGORIES)]
    return draft


def muted(session: Session, member_id: int) -> set[str]:
    """The categories a member muted."""
    query = select(BroadcastMute.category).where(col(BroadcastMute.member_id) == member_id)
    return set(session.exec(query).all())


def toggle_mute(session: Session, member_id: int, category: str) -> bool:
    """Mute or unmute a category for a member; True when it is muted now."""
    if category not in CATEGORIES:
        raise BadInput("button_expired")
    found = session.get(BroadcastMute, (member_id, category))
    if found is not None:
        session.delete(found)
        return False
    session.add(BroadcastMute(member_id=member_id, category=category))
    return True


def audience_of(draft: Broadcast) -> Audience:
    """The audience stored on a broadcast."""
    return Audience.from_json(draft.audience)


def set_audience(
    session: Session, actor: Actor, broadcast_id: int, chosen: Audience, all_units: Iterable[str]
) -> Broadcast:
    """Store the audience as this cadre may send it (a unit cadre: only their units; NotAllowed otherwise)."""
    draft = _draft(session, actor, broadcast_id)
    unknown_roles = set(chosen.roles) - set(ROLES)
    if unknown_roles:
        raise BadInput("role_unknown")
    audiences.in_scope(actor, chosen, all_units)
    _check_clubs(session, actor, chosen.clubs)
    draft.audience = chosen.to_json()
    return draft


def clubs_in_scope(session: Session, actor: Actor) -> list[clubs.Club]:
    """The clubs a cadre may target, by name: every club for the bureau, for a unit cadre the clubs open only to
    their units (the clubs they manage: models/clubs.py managed_clubs)."""
    return clubs.managed_clubs(session, actor)


def _check_clubs(session: Session, actor: Actor, club_ids: Iterable[int]) -> None:
    """NotAllowed when a club is not in this cadre's scope (another unit's club, or one that does not exist)."""
    wanted = set(club_ids)
    if wanted and not wanted <= {c.id for c in clubs_in_scope(session, actor)}:
        raise NotAllowed()


def toggle_group(session: Session, actor: Actor, broadcast_id: int, club_id: int) -> Broadcast:
    """Post the draft in this club's linked group too, or not (a club in the cadre's scope with a linked group)."""
    draft = _draft(session, actor, broadcast_id)
    chosen = list(draft.groups)
    if club_id in chosen:
        chosen.remove(club_id)
    else:
        _check_clubs(session, actor, [club_id])
        if clubs.get_club(session, club_id).chat_id is None:
            raise BadInput("broadcast_group_not_linked")
        chosen = sorted([*chosen, club_id])
    draft.groups = chosen
    session.add(draft)
    session.flush()
    return draft


def toggle_pin(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """Pin the post in the club groups once delivered (the bot needs the "pin messages" right there), or not."""
    draft = _draft(session, actor, broadcast_id)
    draft.pin = not draft.pin
    session.add(draft)
    session.flush()
    return draft


def clubs_named(session: Session, club_ids: Iterable[int]) -> list[clubs.Club]:
    """These clubs (those that still exist), for showing their names."""
    return list(session.exec(select(clubs.Club).where(col(clubs.Club.id).in_(list(club_ids)))).all())


def linked_groups(session: Session, club_ids: Iterable[int]) -> list[tuple[int, int]]:
    """(club id, group chat id) of these clubs whose group is linked now, by club id."""
    wanted = list(club_ids)
    if not wanted:
        return []
    query = (
        select(clubs.Club.id, clubs.Club.chat_id)
        .where(col(clubs.Club.id).in_(wanted), col(clubs.Club.chat_id).is_not(None))
        .order_by(col(clubs.Club.id))
    )
    return [(int(club_id), int(chat_id)) for club_id, chat_id in session.exec(query).all()]


def reach(session: Session, actor: Actor, draft: Broadcast, all_units: Iterable[str], today: date) -> AudienceCount:
    """How many members the draft reaches as this cadre would send it, and how many of them blocked the bot."""
    return audiences.count(session, audiences.in_scope(actor, audience_of(draft), all_units), today)


def discard(session: Session, actor: Actor, broadcast_id: int) -> None:
    """Throw a draft away."""
    _move(session, get(session, actor, broadcast_id), (BroadcastStatus.DRAFT,), BroadcastStatus.DISCARDED)


def _move(session: Session, found: Broadcast, expected: tuple[str, ...], to: str, **values: Any) -> None:
    """Change the status only from an expected one (a repeated or stale press changes nothing)."""
    assert found.id is not None
    result = session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == found.id, col(Broadcast.status).in_(expected))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise BadInput("broadcast_state_changed")
    session.refresh(found)


# --- sending ----------------------------------------------------------------------------------------------


def keyboard(found: Broadcast, ack_data: str | None, ack_label: str | None) -> dict[str, Any] | None:
    """The inline keyboard members see: the ack button (already packed and labelled), then the link buttons."""
    rows: list[list[dict[str, str]]] = []
    if found.ack and ack_data and ack_label:
        rows.append([{"text": ack_label, "callback_data": ack_data}])
    rows.extend([{"text": b["label"], "url": b["url"]}] for b in found.buttons)
    return {"inline_keyboard": rows} if rows else None


def _queue(
    session: Session, found: Broadcast, scoped: Audience, now: datetime, today: date, quiet: QuietHours, ack: AckFn
) -> int:
    """Queue one copy per reachable member (blocked members are skipped and counted); returns how many were new."""
    assert found.id is not None
    rows = session.exec(audiences.members(scoped, today)).all()
    not_before = None if found.urgent else quiet.until(now)
    silent: set[int] = set()
    if not found.mandatory:
        query = select(BroadcastMute.member_id).where(col(BroadcastMute.category) == found.category)
        silent = set(session.exec(query).all())
    rows = [row for row in rows if row.id not in silent]
    reachable = [row for row in rows if not row.blocked_bot]
    # One keyboard per language (the ack button's label), built once.
    markups = {lang: keyboard(found, *ack(found.id, lang)) for lang in {row.language for row in reachable}}
    notices = [
        outbox.Notice(
            chat_id=row.telegram_id,
            text="",
            dedupe_key=dedupe_key(found.id, row.id),
            member_id=row.id,
            keyboard=markups[row.language],
            copy_from_chat_id=found.source_chat_id,
            copy_message_id=found.source_message_id,
        )
        for row in reachable
    ]
    added = outbox.enqueue_many(session, notices, kind=kind_of(found.id), not_before=not_before or now)
    _queue_groups(session, found, not_before or now)
    found.recipients = len(reachable)
    found.skipped_blocked = len(rows) - len(reachable)
    found.queued_at = now
    return added


def _queue_groups(session: Session, found: Broadcast, not_before: datetime) -> int:
    """One post per chosen club group still linked (once per broadcast and club: the dedupe key). Link buttons
    only: "Got it" counts members who received the broadcast in private."""
    assert found.id is not None
    markup = keyboard(found, None, None)
    notices = [
        outbox.Notice(
            chat_id=chat_id,
            text="",
            dedupe_key=f"bcg:{found.id}:{club_id}",
            keyboard=markup,
            copy_from_chat_id=found.source_chat_id,
            copy_message_id=found.source_message_id,
            pin=found.pin,
        )
        for club_id, chat_id in linked_groups(session, found.groups)
    ]
    return outbox.enqueue_many(session, notices, kind=group_kind_of(found.id), not_before=not_before) if notices else 0


def send_now(
    session: Session,
    actor: Actor,
    broadcast_id: int,
    *,
    now: datetime,
    today: date,
    all_units: Iterable[str],
    quiet: QuietHours,
    ack: AckFn,
    progress_at: tuple[int, int] | None = None,
) -> Broadcast:
    """Confirmed: queue the copies now (quiet hours push ordinary ones to their end). `ack(locale)` gives the
    ack button's (callback data, label); `progress_at` is the (chat, message) edited with the progress."""
    found = _draft(session, actor, broadcast_id)
    scoped = audiences.in_scope(actor, audience_of(found), all_units)
    _check_clubs(session, actor, [*scoped.clubs, *found.groups])
    chat, message = progress_at or (None, None)
    _move(
        session,
        found,
        (BroadcastStatus.DRAFT,),
        BroadcastStatus.SENDING,
        progress_chat_id=chat,
        progress_message_id=message,
        audience=scoped.to_json(),
    )
    _queue(session, found, scoped, now, today, quiet, ack)
    return found


def schedule(
    session: Session,
    actor: Actor,
    broadcast_id: int,
    at: datetime,
    now: datetime,
    all_units: Iterable[str],
    *,
    repeat: str = "",
    until: date | None = None,
    tz: ZoneInfo | None = None,
) -> Broadcast:
    """Confirmed for later: a row the scheduler releases at `at` (in the future); with `repeat`, again on that
    rule until the local day `until` (required, within REPEAT_MAX_DAYS)."""
    found = _draft(session, actor, broadcast_id)
    if at <= now:
        raise BadInput("broadcast_time_past")
    if repeat and repeat not in REPEATS:
        raise BadInput("broadcast_state_changed")
    if repeat:
        first_day = at.astimezone(tz).date() if tz is not None else at.date()
        if until is None:
            raise BadInput("broadcast_repeat_needs_end")
        if not first_day <= until <= first_day + timedelta(days=REPEAT_MAX_DAYS):
            raise BadInput("broadcast_repeat_end", days=REPEAT_MAX_DAYS)
    # Stored as the author may send it ("all units" of a unit cadre becomes their units): the scheduler has no actor.
    scoped = audiences.in_scope(actor, audience_of(found), all_units)
    _check_clubs(session, actor, [*scoped.clubs, *found.groups])
    values: dict[str, Any] = {"send_at": at, "audience": scoped.to_json(), "repeat": repeat, "repeat_until": until}
    _move(session, found, (BroadcastStatus.DRAFT,), BroadcastStatus.SCHEDULED, **values)
    return found


def next_run(at: datetime, repeat: str, tz: ZoneInfo) -> datetime:
    """The run after `at` on a recurring rule, at the same local time (monthly: the day, or the month's last)."""
    local = at.astimezone(tz)
    if repeat == "weekdays":
        step = 3 if local.weekday() == 4 else 2 if local.weekday() == 5 else 1
        following = local.date() + timedelta(days=step)
    elif repeat == "weekly":
        following = local.date() + timedelta(days=7)
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
        following = date(year, month, min(local.day, last))
    return datetime.combine(following, local.time().replace(tzinfo=None), tz).astimezone(at.tzinfo)


def pause(session: Session, actor: Actor, broadcast_id: int) -> Broadcast:
    """Hold a scheduled broadcast (it is not sent when its time comes)."""
    found = get(session, actor, broadcast_id)
    _move(session, found, (BroadcastStatus.SCHEDULED,), BroadcastStatus.PAUSED)
    return found


def resume(session: Session, actor: Actor, broadcast_id: int, now: datetime) -> Broadcast:
    """Scheduled again; one whose time passed while paused goes out at the next tick."""
    found = get(session, actor, broadcast_id)
    _move(session, found, (BroadcastStatus.PAUSED,), BroadcastStatus.SCHEDULED)
    return found


def cancel(session: Session, actor: Actor, broadcast_id: int, now: datetime) -> int:
    """Stop a broadcast: a scheduled one never goes out; a sending one loses its copies not sent yet (those in
    flight still arrive). Returns how many copies were withdrawn."""
    found = get(session, actor, broadcast_id)
    assert found.id is not None
    expected = (BroadcastStatus.SCHEDULED, BroadcastStatus.PAUSED, BroadcastStatus.SENDING)
    _move(session, found, expected, BroadcastStatus.CANCELLED, finished_at=now)
    withdrawn = session.exec(
        delete(OutboxMessage).where(
            col(OutboxMessage.kind).in_([kind_of(found.id), group_kind_of(found.id)]),
            col(OutboxMessage.status) == outbox.Status.PENDING,
        )
    ).rowcount
    return int(withdrawn)


def release_due(
    session: Session,
    now: datetime,
    today: date,
    quiet: QuietHours,
    ack: AckFn,
    *,
    limit: int = 20,
) -> list[int]:
    """Queue the scheduled broadcasts whose time has come (the scheduler's tick); returns the ids sent.

    The audience was checked against the author's scope when it was chosen and scheduled. Missed-run policy:
    a broadcast whose time passed while the bot was down goes out at the first tick after the restart (late
    rather than never); a recurring one sends one run for all its missed times, then waits for its next time.
    A recurring broadcast stays scheduled and each run is a new row (its own progress, report and dedupe keys).
    """
    due = session.exec(
        select(Broadcast)
        .where(col(Broadcast.status) == BroadcastStatus.SCHEDULED, col(Broadcast.send_at) <= now)
        .order_by(col(Broadcast.send_at), col(Broadcast.id))
        .limit(limit)
    ).all()
    released = []
    for found in due:
        assert found.id is not None and found.send_at is not None
        if found.repeat:
            run = _next_run_of(session, found, now, quiet.tz)
            if run is None:
                continue
            _queue(session, run, audience_of(run), now, today, quiet, ack)
            assert run.id is not None
            released.append(run.id)
            continue
        if _claim_due(session, found, BroadcastStatus.SENDING):
            _queue(session, found, audience_of(found), now, today, quiet, ack)
            released.append(found.id)
    return released


def _claim_due(session: Session, found: Broadcast, to: str, **values: Any) -> bool:
    """Move a due scheduled row on, unless another tick (or process) already did."""
    result = session.exec(
        update(Broadcast)
        .where(
            col(Broadcast.id) == found.id,
            col(Broadcast.status) == BroadcastStatus.SCHEDULED,
            col(Broadcast.send_at) == found.send_at,
        )
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(found)
    return True


def _next_run_of(session: Session, parent: Broadcast, now: datetime, tz: ZoneInfo) -> Broadcast | None:
    """A recurring broadcast is due: advance it past `now` (done after its last day) and return this run's row."""
    assert parent.send_at is not None
    following = next_run(parent.send_at, parent.repeat, tz)
    while following <= now:
        following = next_run(following, parent.repeat, tz)
    over = parent.repeat_until is None or following.astimezone(tz).date() > parent.repeat_until
    status = BroadcastStatus.DONE if over else BroadcastStatus.SCHEDULED
    ran_at = parent.send_at
    if not _claim_due(session, parent, status, send_at=following, finished_at=now if over else None):
        return None
    run = Broadcast(
        author_telegram_id=parent.author_telegram_id,
        source_chat_id=parent.source_chat_id,
        source_message_id=parent.source_message_id,
        media=parent.media,
        buttons=parent.buttons,
        audience=parent.audience,
        ack=parent.ack,
        urgent=parent.urgent,
        category=parent.category,
        mandatory=parent.mandatory,
        groups=parent.groups,
        pin=parent.pin,
        status=BroadcastStatus.SENDING,
        send_at=ran_at,
        parent_id=parent.id,
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def progress(session: Session, found: Broadcast) -> Progress:
    """Where delivery stands: counts of the broadcast's outbox rows (withdrawn rows count as cancelled)."""
    assert found.id is not None
    counts = outbox.progress(session, kind_of(found.id))
    pending = counts[outbox.Status.PENDING] + counts[outbox.Status.SENDING]
    settled = counts[outbox.Status.SENT] + counts[outbox.Status.BLOCKED] + counts[outbox.Status.FAILED]
    return Progress(
        recipients=found.recipients,
        delivered=counts[outbox.Status.SENT],
        pending=pending,
        blocked=counts[outbox.Status.BLOCKED],
        failed=counts[outbox.Status.FAILED],
        cancelled=max(0, found.recipients - settled - pending),
        skipped_blocked=found.skipped_blocked,
    )


def finish_sent(session: Session, now: datetime) -> list[int]:
    """Broadcasts whose every copy is settled become done; returns their ids."""
    active = (col(OutboxMessage.status) == outbox.Status.PENDING) | (col(OutboxMessage.status) == outbox.Status.SENDING)
    sending = session.exec(select(Broadcast).where(col(Broadcast.status) == BroadcastStatus.SENDING)).all()
    done = []
    for found in sending:
        assert found.id is not None
        busy = session.exec(select(func.count()).where(col(OutboxMessage.kind) == kind_of(found.id), active)).one()
        if busy == 0:
            session.exec(
                update(Broadcast)
                .where(col(Broadcast.id) == found.id, col(Broadcast.status) == BroadcastStatus.SENDING)
                .values(status=BroadcastStatus.DONE, finished_at=now)
                .execution_options(synchronize_session=False)
            )
            done.append(found.id)
    return done


def sending_ids(session: Session) -> list[int]:
    """Broadcasts being delivered now."""
    return list(session.exec(select(Broadcast.id).where(col(Broadcast.status) == BroadcastStatus.SENDING)).all())


# --- members' side ----------------------------------------------------------------------------------------------


def acknowledge(session: Session, member_id: int, broadcast_id: int, now: datetime) -> bool:
    """A recipient pressed "Got it": recorded once (False when already recorded). Only recipients may ack."""
    received = session.exec(
        select(func.count()).where(
            col(OutboxMessage.dedupe_key) == dedupe_key(broadcast_id, member_id),
            col(OutboxMessage.status) == outbox.Status.SENT,
        )
    ).one()
    if not received:
        raise BadInput("broadcast_ack_not_recipient")
    insert = pg_insert if session.connection().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(BroadcastAck.__table__)
        .values(broadcast_id=broadcast_id, member_id=member_id, at=now)
        .on_conflict_do_nothing()
        .returning(BroadcastAck.__table__.c.member_id)
    )
    return session.exec(statement).first() is not None


# --- lists and reports -------------------------------------------------------------------------------------------


def listing(session: Session, actor: Actor) -> list[Broadcast]:
    """The cadre's broadcasts (all of them for the bureau) that are scheduled, paused, sending or sent, newest first."""
    actor.require_cadre()
    shown = (
        BroadcastStatus.SCHEDULED,
        BroadcastStatus.PAUSED,
        BroadcastStatus.SENDING,
        BroadcastStatus.DONE,
        BroadcastStatus.CANCELLED,
    )
    query = select(Broadcast).where(col(Broadcast.status).in_(shown))
    if not actor.is_bureau:
        query = query.where(col(Broadcast.author_telegram_id) == actor.telegram_id)
    return list(session.exec(query.order_by(col(Broadcast.id).desc()).limit(LIST_SIZE)).all())


def report(session: Session, actor: Actor, broadcast_id: int, today: date) -> list[UnitLine]:
    """Per unit: recipients, delivered, blocked, failed, acknowledged, and under-35 reach; units by code."""
    found = get(session, actor, broadcast_id)
    assert found.id is not None
    young = col(Member.birth_year) > today.year - audiences.YOUNG_AGE
    sent = col(OutboxMessage.status) == outbox.Status.SENT
    acked = col(BroadcastAck.member_id).is_not(None)
    query = (
        select(
            Member.unit_code,
            func.count(),
            func.count().filter(sent),
            func.count().filter(col(OutboxMessage.status) == outbox.Status.BLOCKED),
            func.count().filter(col(OutboxMessage.status) == outbox.Status.FAILED),
            func.count().filter(acked),
            func.count().filter(young),
            func.count().filter(young & sent),
        )
        .select_from(OutboxMessage)
        .join(Member, col(Member.id) == col(OutboxMessage.member_id))
        .outerjoin(
            BroadcastAck,
            (col(BroadcastAck.broadcast_id) == found.id) & (col(BroadcastAck.member_id) == col(Member.id)),
        )
        .where(col(OutboxMessage.kind) == kind_of(found.id))
        .group_by(col(Member.unit_code))
        .order_by(col(Member.unit_code))
    )
    return [UnitLine(*row) for row in session.exec(query).all()]  # type: ignore[call-overload]


CSV_COLUMNS = ("unit", "recipients", "delivered", "blocked", "failed", "acknowledged", "under_35_reached_percent")


def report_csv(lines: list[UnitLine], unit_names: dict[str, str]) -> bytes:
    """The report as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese unit names)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        share = "" if line.young_share is None else line.young_share
        name = unit_names.get(line.unit, line.unit)
        writer.writerow([name, line.recipients, line.delivered, line.blocked, line.failed, line.acknowledged, share])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def forget_member(session: Session, member_id: int) -> int:
    """An account was deleted: its acknowledgements and mutes go (outbox rows are handled by the outbox)."""
    acks = session.exec(delete(BroadcastAck).where(col(BroadcastAck.member_id) == member_id)).rowcount
    mutes = session.exec(delete(BroadcastMute).where(col(BroadcastMute.member_id) == member_id)).rowcount
    return int(acks) + int(mutes)


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """The member's acknowledgements and muted categories (for "export my data")."""
    acks = session.exec(
        select(BroadcastAck).where(col(BroadcastAck.member_id) == member_id).order_by(col(BroadcastAck.broadcast_id))
    )
    mutes = session.exec(select(BroadcastMute.category).where(col(BroadcastMute.member_id) == member_id))
    return {
        "acknowledged": [{"broadcast": a.broadcast_id, "at": a.at} for a in acks],
        "muted_categories": sorted(mutes),
    }


def forget_author(session: Session, telegram_id: int) -> None:
    """A cadre's account was deleted: their broadcasts stay for the records under author 0, with no progress card in
    their chat; their drafts are discarded. A broadcast still to go out keeps its source chat (it is copied from
    there) until it is done."""
    theirs = col(Broadcast.author_telegram_id) == telegram_id
    session.exec(
        update(Broadcast)
        .where(theirs, col(Broadcast.status) == BroadcastStatus.DRAFT)
        .values(status=BroadcastStatus.DISCARDED)
    )
    finished = [BroadcastStatus.DONE, BroadcastStatus.CANCELLED, BroadcastStatus.DISCARDED]
    session.exec(update(Broadcast).where(theirs, col(Broadcast.status).in_(finished)).values(source_chat_id=0))
    session.exec(
        update(Broadcast)
        .where(theirs)
        .values(author_telegram_id=0, progress_chat_id=None, progress_message_id=None)
        .execution_options(synchronize_session=False)
    )
