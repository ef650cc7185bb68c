"""Clubs (星协俱乐部): clubs, who belongs to them and who leads them, and each club's linked Telegram group.

A membership row is a request waiting for a leader (PENDING) or a member (MEMBER); leaving deletes it, so the
UNIQUE (club, member) pair makes joining and requesting once-only. Leaders are members with `leader` set,
named by cadres. Audiences (models/audience.py) and club-only runs (models/runs.py) read the MEMBER rows. A club
may be open to some units only (`units`, comma-separated codes; empty: every unit).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, UniqueConstraint, delete, exists, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models import audit
from models.clock import utcnow
from models.errors import BadInput, DomainError, NotAllowed
from models.members import Actor, Member, Status

NAME_MAX = 40
DESCRIPTION_MAX = 500
CODE_MAX = 16
CODE_PATTERN = re.compile(r"^[a-z0-9_-]{2,16}$")
PHOTO_ID_MAX = 200
INVITE_LINK_MAX = 200


class MemberStatus(enum.StrEnum):
    PENDING = "pending"
    MEMBER = "member"


class Club(SQLModel, table=True):
    __tablename__ = "club"

    id: int | None = Field(default=None, primary_key=True)
    # Stable code for imports and /linkclub (imports are idempotent by code).
    code: str = Field(max_length=CODE_MAX, unique=True)
    name: str = Field(max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    photo_file_id: str | None = Field(default=None, max_length=PHOTO_ID_MAX)
    # Anyone (of the units below) joins at once; otherwise a leader approves each request.
    open: bool = True
    # Units whose members may join, comma-separated ("" = every unit).
    units: str = Field(default="", max_length=400)
    # The club's Telegram group (linked by a leader with /linkclub) and its join-request invite link.
    chat_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    invite_link: str | None = Field(default=None, max_length=INVITE_LINK_MAX)
    created_at: datetime = Field(default_factory=utcnow)


class ClubMember(SQLModel, table=True):
    __tablename__ = "club_member"
    __table_args__ = (UniqueConstraint("club_id", "member_id", name="uq_club_member"),)

    id: int | None = Field(default=None, primary_key=True)
    club_id: int = Field(foreign_key="club.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default=MemberStatus.MEMBER, max_length=12)
    leader: bool = False
    joined_at: datetime = Field(default_factory=utcnow)


class ClubNotFound(DomainError):
    key = "clubs_not_found"


class NotLeader(NotAllowed):
    key = "clubs_not_leader"


@dataclass(frozen=True)
class ClubDraft:
    """What a cadre fills in (the admin form, or one entry of an import file)."""

    code: str
    name: str
    description: str = ""
    open: bool = True
    units: tuple[str, ...] = ()
    photo_file_id: str | None = None


@dataclass(frozen=True)
class Person:
    member_id: int
    telegram_id: int
    language: str
    name: str


@dataclass(frozen=True)
class ClubRow:
    club: Club
    members: int
    leaders: list[str]
    mine: str | None


@dataclass(frozen=True)
class ClubCard:
    club: Club
    members: int
    leaders: list[str]
    mine: str | None
    is_leader: bool
    pending: int
    can_join: bool


@dataclass(frozen=True)
class Left:
    """Someone left a club: its group (if linked) must remove their Telegram account."""

    chat_id: int | None
    telegram_id: int | None


def units_of(club: Club) -> tuple[str, ...]:
    """The units a club is open to (empty: all)."""
    return tuple(u for u in club.units.split(",") if u)


def _open_to(club: Club, member: Member) -> bool:
    units = units_of(club)
    return not units or member.unit_code in units


def is_member_of(member_id_column: Any, club_ids: tuple[int, ...]) -> Any:
    """SQL condition: the member (a column or an id) belongs to one of these clubs."""
    return exists().where(
        col(ClubMember.member_id) == member_id_column,
        col(ClubMember.club_id).in_(list(club_ids)),
        col(ClubMember.status) == MemberStatus.MEMBER,
    )


def _row(session: Session, club_id: int, member_id: int) -> ClubMember | None:
    return session.exec(
        select(ClubMember)
        .where(col(ClubMember.club_id) == club_id, col(ClubMember.member_id) == member_id)
        .execution_options(populate_existing=True)
    ).first()


def get_club(session: Session, club_id: int) -> Club:
    club = session.get(Club, club_id)
    if club is None:
        raise ClubNotFound()
    return club


def clubs_of(session: Session, member_id: int) -> list[Club]:
    """The clubs this member belongs to, by name."""
    return list(
        session.exec(
            select(Club)
            .join(ClubMember, col(ClubMember.club_id) == col(Club.id))
            .where(col(ClubMember.member_id) == member_id, col(ClubMember.status) == MemberStatus.MEMBER)
            .order_by(col(Club.name))
        )
    )


def belongs(session: Session, member_id: int, club_id: int) -> bool:
    """Whether this member is a member (not just a requester) of the club."""
    row = _row(session, club_id, member_id)
    return row is not None and row.status == MemberStatus.MEMBER


def _count(session: Session, club_id: int, status: MemberStatus) -> int:
    return session.exec(
        select(func.count()).where(col(ClubMember.club_id) == club_id, col(ClubMember.status) == status)
    ).one()


def leaders(session: Session, club_id: int) -> list[Member]:
    return list(
        session.exec(
            select(Member)
            .join(ClubMember, col(ClubMember.member_id) == col(Member.id))
            .where(col(ClubMember.club_id) == club_id, col(ClubMember.leader), col(Member.status) == Status.VERIFIED)
            .order_by(col(Member.id))
        )
    )


def list_clubs(session: Session, member: Member, limit: int, offset: int = 0) -> list[ClubRow]:
    """Clubs open to my unit (and those I belong to), by name, with member counts and leaders."""
    found = session.exec(select(Club).order_by(col(Club.name), col(Club.id))).all()
    rows = []
    for club in found:
        mine = _row(session, club.id, member.id)
        if not _open_to(club, member) and mine is None:
            continue
        names = [m.name or "" for m in leaders(session, club.id)]
        rows.append(ClubRow(club, _count(session, club.id, MemberStatus.MEMBER), names, mine and mine.status))
    return rows[offset : offset + limit]


def card(session: Session, member: Member, club_id: int) -> ClubCard:
    """One club as this member sees it."""
    club = get_club(session, club_id)
    mine = _row(session, club.id, member.id)
    if mine is None and not _open_to(club, member):
        raise DomainError("clubs_not_open_to_unit")
    heads = leaders(session, club.id)
    is_leader = mine is not None and mine.leader and mine.status == MemberStatus.MEMBER
    return ClubCard(
        club=club,
        members=_count(session, club.id, MemberStatus.MEMBER),
        leaders=[m.name or "" for m in heads],
        mine=mine.status if mine is not None else None,
        is_leader=is_leader,
        pending=_count(session, club.id, MemberStatus.PENDING) if is_leader else 0,
        can_join=_open_to(club, member),
    )


def people(session: Session, member_ids: list[int]) -> list[Person]:
    """Verified members to tell something, by id."""
    rows = session.exec(
        select(Member).where(
            col(Member.id).in_(member_ids), col(Member.status) == Status.VERIFIED, col(Member.telegram_id).is_not(None)
        )
    ).all()
    return [Person(m.id, m.telegram_id, m.language, m.name or "") for m in rows]


def leaders_to_tell(session: Session, club_id: int) -> list[Person]:
    return people(session, [m.id for m in leaders(session, club_id)])


# --- joining and leaving ----------------------------------------------------------------------------------------


def join(session: Session, member: Member, club_id: int, now: datetime) -> MemberStatus:
    """Join an open club, or ask to join one that needs approval (once: UNIQUE club + member)."""
    club = get_club(session, club_id)
    if not _open_to(club, member):
        raise DomainError("clubs_not_open_to_unit")
    existing = _row(session, club.id, member.id)
    if existing is not None:
        return MemberStatus(existing.status)
    status = MemberStatus.MEMBER if club.open else MemberStatus.PENDING
    try:
        with session.begin_nested():
            session.add(ClubMember(club_id=club.id, member_id=member.id, status=status, joined_at=now))
    except IntegrityError:
        # The same member's concurrent press won: what it stored stands.
        return MemberStatus(_row(session, club.id, member.id).status)
    return status


def leave(session: Session, member: Member, club_id: int) -> Left:
    """Leave a club or withdraw a request; a member of a linked group is to be removed from it."""
    club = get_club(session, club_id)
    gone = session.exec(
        delete(ClubMember)
        .where(col(ClubMember.club_id) == club.id, col(ClubMember.member_id) == member.id)
        .returning(col(ClubMember.status))
    ).scalar_one_or_none()
    if gone is None:
        raise DomainError("clubs_not_member")
    was_member = gone == MemberStatus.MEMBER
    return Left(club.chat_id if was_member else None, member.telegram_id)


def _require_leader(session: Session, member: Member, club_id: int) -> Club:
    club = get_club(session, club_id)
    row = _row(session, club.id, member.id)
    if row is None or not row.leader or row.status != MemberStatus.MEMBER:
        raise NotLeader()
    return club


def pending(session: Session, leader: Member, club_id: int, limit: int) -> list[Person]:
    """Requests waiting for a leader of this club, oldest first."""
    _require_leader(session, leader, club_id)
    ids = session.exec(
        select(ClubMember.member_id)
        .where(col(ClubMember.club_id) == club_id, col(ClubMember.status) == MemberStatus.PENDING)
        .order_by(col(ClubMember.id))
        .limit(limit)
    ).all()
    found = {p.member_id: p for p in people(session, list(ids))}
    return [found[i] for i in ids if i in found]


def decide(session: Session, leader: Member, club_id: int, member_id: int, approve: bool) -> Person | None:
    """A leader approves or declines a request (conditional: a second decision finds nothing to decide)."""
    _require_leader(session, leader, club_id)
    where = [
        col(ClubMember.club_id) == club_id,
        col(ClubMember.member_id) == member_id,
        col(ClubMember.status) == MemberStatus.PENDING,
    ]
    if approve:
        done = session.exec(update(ClubMember).where(*where).values(status=MemberStatus.MEMBER))
    else:
        done = session.exec(delete(ClubMember).where(*where))
    if done.rowcount != 1:
        raise DomainError("request_gone")
    found = people(session, [member_id])
    return found[0] if found else None


@dataclass(frozen=True)
class RosterLine:
    person: Person
    leader: bool


@dataclass(frozen=True)
class Removed:
    """A leader removed a member: who to tell (None when they cannot be written to) and the group to leave."""

    club: Club
    person: Person | None
    chat_id: int | None
    telegram_id: int | None


def member_list(session: Session, leader: Member, club_id: int, limit: int, offset: int = 0) -> list[RosterLine]:
    """The club's members (not requesters) for a leader of the club: leaders first, then by joining order."""
    _require_leader(session, leader, club_id)
    rows = session.exec(
        select(ClubMember.member_id, ClubMember.leader)
        .where(col(ClubMember.club_id) == club_id, col(ClubMember.status) == MemberStatus.MEMBER)
        .order_by(col(ClubMember.leader).desc(), col(ClubMember.joined_at), col(ClubMember.id))
        .offset(offset)
        .limit(limit)
    ).all()
    found = {p.member_id: p for p in people(session, [member_id for member_id, _ in rows])}
    return [RosterLine(found[member_id], bool(leader)) for member_id, leader in rows if member_id in found]


def club_member(session: Session, leader: Member, club_id: int, member_id: int) -> Person:
    """One member of the club as a leader of it sees them (to confirm a removal)."""
    _require_leader(session, leader, club_id)
    if not belongs(session, member_id, club_id):
        raise DomainError("clubs_member_gone")
    found = people(session, [member_id])
    if not found:
        raise DomainError("clubs_member_gone")
    return found[0]


def remove_member(session: Session, leader: Member, club_id: int, member_id: int) -> Removed:
    """A leader removes a member from the club (not themselves, not another leader: cadres name leaders).
    Conditional: a second press finds nobody to remove."""
    club = _require_leader(session, leader, club_id)
    if member_id == leader.id:
        raise DomainError("clubs_remove_self")
    row = _row(session, club.id, member_id)
    if row is not None and row.leader:
        raise DomainError("clubs_remove_leader")
    gone = session.exec(
        delete(ClubMember).where(
            col(ClubMember.club_id) == club.id,
            col(ClubMember.member_id) == member_id,
            col(ClubMember.status) == MemberStatus.MEMBER,
            col(ClubMember.leader).is_(False),
        )
    ).rowcount
    if gone != 1:
        raise DomainError("clubs_member_gone")
    audit.record(session, leader.telegram_id or 0, "club_remove_member", f"member:{member_id}", club=club.id)
    target = session.get(Member, member_id)
    found = people(session, [member_id])
    return Removed(club, found[0] if found else None, club.chat_id, target.telegram_id if target else None)


def roster(session: Session, actor: Actor, club_id: int) -> tuple[Club, list[tuple[Member, ClubMember]]]:
    """The member list for a leader of the club or a cadre (CSV export)."""
    club = get_club(session, club_id)
    mine = _row(session, club.id, actor.member.id) if actor.member is not None else None
    leader = mine is not None and mine.leader and mine.status == MemberStatus.MEMBER
    if not leader:
        if not actor.is_cadre:
            raise NotLeader()
        # A unit cadre sees the members of their units' clubs only.
        _require_scope(actor, units_of(club))
    rows = session.exec(
        select(Member, ClubMember)
        .join(ClubMember, col(ClubMember.member_id) == col(Member.id))
        .where(col(ClubMember.club_id) == club.id)
        .order_by(col(ClubMember.status).desc(), col(ClubMember.joined_at), col(ClubMember.id))
    ).all()
    return club, [(m, cm) for m, cm in rows]


def forget_member(session: Session, member_id: int) -> list[int]:
    """A deleted account leaves every club; returns the linked groups it must be removed from."""
    chats = session.exec(
        select(Club.chat_id)
        .join(ClubMember, col(ClubMember.club_id) == col(Club.id))
        .where(
            col(ClubMember.member_id) == member_id,
            col(ClubMember.status) == MemberStatus.MEMBER,
            col(Club.chat_id).is_not(None),
        )
    ).all()
    session.exec(delete(ClubMember).where(col(ClubMember.member_id) == member_id))
    return [c for c in chats if c is not None]


# --- cadres ---------------------------------------------------------------------------------------------------------


def check_draft(draft: ClubDraft, known_units: set[str]) -> None:
    """BadInput naming the first thing wrong with a draft."""
    if not CODE_PATTERN.match(draft.code):
        raise BadInput("clubs_code_invalid", code=draft.code[: CODE_MAX * 2])
    if not draft.name or len(draft.name) > NAME_MAX:
        raise BadInput("clubs_text_too_long", max=NAME_MAX)
    if len(draft.description) > DESCRIPTION_MAX:
        raise BadInput("clubs_text_too_long", max=DESCRIPTION_MAX)
    unknown = [u for u in draft.units if u not in known_units]
    if unknown:
        raise BadInput("unit_unknown", unit=unknown[0][:CODE_MAX])


def _require_scope(actor: Actor, units: tuple[str, ...]) -> None:
    """A unit cadre manages clubs open only to their units; bureau cadres any club."""
    actor.require_cadre()
    if actor.is_bureau:
        return
    if not units or not all(actor.can_manage(u) for u in units):
        raise NotAllowed()


def save_club(
    session: Session, actor: Actor, draft: ClubDraft, known_units: set[str], now: datetime
) -> tuple[Club, bool]:
    """Create a club, or update the one with the same code; returns (club, created)."""
    check_draft(draft, known_units)
    _require_scope(actor, draft.units)
    club = session.exec(select(Club).where(col(Club.code) == draft.code)).first()
    created = club is None
    if club is None:
        club = Club(code=draft.code, name=draft.name, created_at=now)
    else:
        _require_scope(actor, units_of(club))
    club.name, club.description, club.open = draft.name, draft.description, draft.open
    club.units = ",".join(draft.units)
    if draft.photo_file_id is not None:
        club.photo_file_id = draft.photo_file_id
    session.add(club)
    session.flush()
    audit.record(session, actor.telegram_id, "club_create" if created else "club_update", f"club:{club.id}")
    return club, created


def managed_club(session: Session, actor: Actor, club_id: int) -> Club:
    """A club this cadre manages; NotAllowed for another unit's club."""
    club = get_club(session, club_id)
    _require_scope(actor, units_of(club))
    return club


def managed_clubs(session: Session, actor: Actor) -> list[Club]:
    """The clubs this cadre manages."""
    actor.require_cadre()
    found = session.exec(select(Club).order_by(col(Club.name), col(Club.id))).all()
    return [c for c in found if actor.is_bureau or (units_of(c) and all(actor.can_manage(u) for u in units_of(c)))]


def set_leader(session: Session, actor: Actor, club_id: int, member: Member, leader: bool, now: datetime) -> None:
    """A cadre names (or removes) a leader; a new leader becomes a member of the club if not one already."""
    club = get_club(session, club_id)
    _require_scope(actor, units_of(club))
    if member.status != Status.VERIFIED:
        raise DomainError("member_unknown")
    row = _row(session, club.id, member.id)
    if not leader:
        if row is None or not row.leader:
            raise DomainError("clubs_not_member")
        row.leader = False
    else:
        row = row or ClubMember(club_id=club.id, member_id=member.id, joined_at=now)
        row.status, row.leader = MemberStatus.MEMBER, True
    session.add(row)
    session.flush()
    audit.record(session, actor.telegram_id, "club_leader" if leader else "club_unleader", f"member:{member.id}")


# --- the club's group ---------------------------------------------------------------------------------------------


def link_group(session: Session, member: Member, code: str, chat_id: int) -> Club:
    """A leader links the group they are in to their club (a group links one club; relinking moves it)."""
    club = session.exec(select(Club).where(col(Club.code) == code.lower())).first()
    if club is None:
        raise ClubNotFound()
    _require_leader(session, member, club.id)
    other = session.exec(select(Club).where(col(Club.chat_id) == chat_id, col(Club.id) != club.id)).first()
    if other is not None:
        raise DomainError("clubs_group_taken", name=other.name)
    session.exec(update(Club).where(col(Club.id) == club.id).values(chat_id=chat_id, invite_link=None))
    session.refresh(club)
    return club


def set_invite_link(session: Session, club_id: int, chat_id: int, link: str) -> None:
    """Store the join-request invite link made for the group (only if the group is still linked)."""
    session.exec(update(Club).where(col(Club.id) == club_id, col(Club.chat_id) == chat_id).values(invite_link=link))


def club_of_chat(session: Session, chat_id: int) -> Club | None:
    return session.exec(select(Club).where(col(Club.chat_id) == chat_id)).first()


def unlink_group(session: Session, chat_id: int) -> Club | None:
    """Drop the link of this group (unlinked, bot removed, rights lost); the club it was linked to, if any."""
    club = club_of_chat(session, chat_id)
    if club is None:
        return None
    session.exec(update(Club).where(col(Club.id) == club.id).values(chat_id=None, invite_link=None))
    session.refresh(club)
    return club


def migrate_group(session: Session, old_chat_id: int, new_chat_id: int) -> Club | None:
    """The group became a supergroup: the link follows the new chat id (its old invite link is void)."""
    club = club_of_chat(session, old_chat_id)
    if club is None:
        return None
    session.exec(update(Club).where(col(Club.id) == club.id).values(chat_id=new_chat_id, invite_link=None))
    session.refresh(club)
    return club


def may_enter(session: Session, chat_id: int, telegram_id: int) -> tuple[Club | None, bool]:
    """A join request to a linked group: (the club, whether this Telegram user is a verified member of it)."""
    club = club_of_chat(session, chat_id)
    if club is None:
        return None, False
    member = session.exec(select(Member).where(col(Member.telegram_id) == telegram_id)).first()
    if member is None or member.status != Status.VERIFIED:
        return club, False
    return club, belongs(session, member.id, club.id)


def leader_ids(session: Session, club_id: int) -> list[int]:
    return [m.id for m in leaders(session, club_id)]


def export_rows(session: Session, member_id: int) -> list[dict[str, Any]]:
    """My club memberships (for "export my data")."""
    rows = session.exec(
        select(Club.name, ClubMember)
        .join(Club, col(Club.id) == col(ClubMember.club_id))
        .where(col(ClubMember.member_id) == member_id)
    ).all()
    return [{"club": name, "status": cm.status, "leader": cm.leader, "joined_at": cm.joined_at} for name, cm in rows]


def group_of_event(session: Session, member: Member, club_id: int | None, organiser_id: int) -> Club:
    """The linked group a club event may be posted to by this member (its organiser or a leader of the club)."""
    if club_id is None:
        raise DomainError("clubs_not_linked")
    club = get_club(session, club_id)
    if member.id != organiser_id and member.id not in leader_ids(session, club.id):
        raise NotLeader()
    if club.chat_id is None:
        raise DomainError("clubs_not_linked")
    return club


def group_for_announcement(session: Session, leader: Member, club_id: int) -> Club:
    """The linked group a leader announces in."""
    club = _require_leader(session, leader, club_id)
    if club.chat_id is None:
        raise DomainError("clubs_not_linked")
    return club
