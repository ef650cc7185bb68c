"""Membership: units, members, the roster, roles and who may act for which unit."""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint, delete, func, not_, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models import audit, flows, inbox, outbox
from models.clock import utcnow
from models.errors import BadInput, DomainError, NotAllowed, NotFound

# Characters that show nothing although they are letters, marks or symbols: Hangul fillers, the blank Braille
# pattern, the combining grapheme joiner, Khmer inherent vowels, variation selectors. (Category C characters go
# too: see _shown.)
INVISIBLE = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


class Status(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    DELETED = "deleted"


class Role(enum.StrEnum):
    ADMIN = "admin"
    CADRE = "cadre"
    VOLUNTEER = "volunteer"
    COUNSELLOR = "counsellor"
    # A cadre who handles rights and hardship requests of the units they serve (handlers/care.py).
    CARE_HANDLER = "care_handler"


class UnitRow(SQLModel, table=True):
    __tablename__ = "unit"

    code: str = Field(primary_key=True, max_length=16)
    name_zh: str = Field(max_length=80)
    name_en: str = Field(max_length=120)


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_member_balance_nonneg"),
        # One person per employee number in a unit; erased members have no number any more.
        Index(
            "uq_member_unit_employee",
            "unit_code",
            "employee_no",
            unique=True,
            sqlite_where=text("employee_no IS NOT NULL"),
            postgresql_where=text("employee_no IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    unit_code: str = Field(foreign_key="unit.code", index=True, max_length=16)
    employee_no: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=80)
    birth_year: int | None = None
    status: str = Field(default=Status.PENDING, max_length=12, index=True)
    language: str = Field(default="zh", max_length=5)
    ranking_opt_out: bool = False
    blocked_bot: bool = False
    balance: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    verified_at: datetime | None = None

    @property
    def verified(self) -> bool:
        """A verified member may use every section."""
        return self.status == Status.VERIFIED


class RoleGrant(SQLModel, table=True):
    __tablename__ = "member_role"
    __table_args__ = (UniqueConstraint("member_id", "role", name="uq_member_role"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(max_length=12)
    # For cadres: the unit they serve; None means the whole bureau.
    unit_code: str | None = Field(default=None, foreign_key="unit.code", max_length=16)
    granted_at: datetime = Field(default_factory=utcnow)


class RosterEntry(SQLModel, table=True):
    __tablename__ = "roster"

    unit_code: str = Field(foreign_key="unit.code", primary_key=True, max_length=16)
    employee_no: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=80)
    birth_year: int | None = None


@dataclass(frozen=True)
class Actor:
    """Who is acting: the Telegram user, their member row (if any) and their rights."""

    telegram_id: int
    member: Member | None
    is_admin: bool
    # Units this person acts for as a cadre; None inside means the whole bureau.
    cadre_units: frozenset[str | None]
    roles: frozenset[str]

    @property
    def verified(self) -> bool:
        """Registered and verified (admins from the config count as verified for admin work)."""
        return self.member is not None and self.member.verified

    @property
    def is_cadre(self) -> bool:
        """Cadre of some unit, bureau cadre, or admin."""
        return self.is_admin or bool(self.cadre_units)

    @property
    def is_bureau(self) -> bool:
        """Acts for every unit."""
        return self.is_admin or None in self.cadre_units

    def can_manage(self, unit_code: str) -> bool:
        """May act as a cadre for this unit."""
        return self.is_bureau or unit_code in self.cadre_units

    def require_cadre(self) -> None:
        """Raise NotAllowed unless a cadre or admin."""
        if not self.is_cadre:
            raise NotAllowed()

    def require_admin(self) -> None:
        """Raise NotAllowed unless an admin."""
        if not self.is_admin:
            raise NotAllowed()

    def require_unit(self, unit_code: str) -> None:
        """Raise NotAllowed unless a cadre of this unit (or of the bureau)."""
        if not self.can_manage(unit_code):
            raise NotAllowed()


def load_actor(session: Session, telegram_id: int, config_admins: Iterable[int]) -> Actor:
    """Everything the permission checks need about one Telegram user, in one query (runs on every update)."""
    rows = (
        session.exec(
            select(Member, RoleGrant)
            .outerjoin(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
            .where(Member.telegram_id == telegram_id)
        )
    ).all()
    member = rows[0][0] if rows else None
    grants: list[RoleGrant] = []
    if member is not None and member.verified:
        grants = [grant for _, grant in rows if grant is not None]
    roles = frozenset(g.role for g in grants)
    is_admin = telegram_id in set(config_admins) or Role.ADMIN in roles
    cadre_units = frozenset(g.unit_code for g in grants if g.role == Role.CADRE)
    return Actor(telegram_id, member, is_admin, cadre_units, roles)


def sync_units(session: Session, units: Iterable[tuple[str, str, str]]) -> None:
    """Make the unit table match the configuration (units are never deleted: members refer to them).

    One upsert per unit: two processes starting at the same moment both succeed.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for code, name_zh, name_en in units:
        names = {"name_zh": name_zh, "name_en": name_en}
        statement = insert(UnitRow.__table__).values(code=code, **names)
        session.exec(statement.on_conflict_do_update(index_elements=["code"], set_=names))


def _shown(ch: str) -> bool:
    """Whether a character is something a reader sees (not a control, format, private or unassigned one)."""
    return unicodedata.category(ch)[0] != "C" and ch not in INVISIBLE


def clean_name(raw: str, max_length: int) -> str:
    """A person's name as typed, normalised; refuses empty, over-long or markup-like input.

    NFKC folds look-alike forms (full-width letters, ligatures) into one spelling; invisible characters and
    direction overrides (U+202E would show the name reversed to cadres) are dropped; spaces are collapsed.
    """
    folded = unicodedata.normalize("NFKC", raw)
    name = " ".join("".join(ch for ch in folded if ch.isspace() or _shown(ch)).split())
    if not name:
        raise BadInput("name_empty")
    if len(name) > max_length:
        raise BadInput("name_too_long", max=max_length)
    if any(ch in name for ch in "<>/\\@#") or name.startswith("/"):
        raise BadInput("name_invalid")
    return name


def clean_employee_no(raw: str, pattern: str) -> str:
    """An employee number as typed; must match the configured pattern."""
    value = raw.strip().upper()
    if not re.fullmatch(pattern, value):
        raise BadInput("employee_no_invalid")
    return value


def find_member(session: Session, unit_code: str, employee_no: str) -> Member | None:
    """The (non-erased) member with this employee number in this unit."""
    query = select(Member).where(Member.unit_code == unit_code, Member.employee_no == employee_no.strip().upper())
    return (session.exec(query)).first()


def register(
    session: Session,
    telegram_id: int,
    unit_code: str,
    employee_no: str,
    name: str,
    language: str,
) -> Member:
    """Create a member: verified at once when the roster matches, otherwise pending a cadre's approval."""
    if session.get(UnitRow, unit_code) is None:
        raise NotFound("unit_unknown")
    existing = (session.exec(select(Member).where(Member.telegram_id == telegram_id))).first()
    if existing is not None:
        raise DomainError("already_registered" if existing.verified else "already_pending")
    if find_member(session, unit_code, employee_no) is not None:
        raise DomainError("employee_no_taken")
    roster = session.get(RosterEntry, (unit_code, employee_no))
    matched = roster is not None and " ".join(roster.name.split()) == name
    member = Member(
        telegram_id=telegram_id,
        unit_code=unit_code,
        employee_no=employee_no,
        name=name,
        birth_year=roster.birth_year if matched else None,
        status=Status.VERIFIED if matched else Status.PENDING,
        language=language,
        verified_at=utcnow() if matched else None,
    )
    try:
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError:
        # The same person (a second device) or the same employee number registered at the same moment.
        again = session.exec(select(Member).where(Member.telegram_id == telegram_id)).first()
        if again is not None:
            raise DomainError("already_registered" if again.verified else "already_pending") from None
        raise DomainError("employee_no_taken") from None
    return member


def withdraw_request(session: Session, telegram_id: int) -> None:
    """A pending applicant takes back their request (nothing else refers to a pending row).

    Conditional on the request still pending: a cadre's approval that won the race is not undone.
    """
    gone = session.exec(
        delete(Member)
        .where(col(Member.telegram_id) == telegram_id, col(Member.status) == Status.PENDING)
        .returning(col(Member.id))
    ).first()
    if gone is None:
        raise NotFound()


def pending_members(session: Session, actor: Actor, limit: int, offset: int = 0) -> list[Member]:
    """Registration requests this cadre may decide, oldest first."""
    actor.require_cadre()
    query = select(Member).where(Member.status == Status.PENDING)
    if not actor.is_bureau:
        query = query.where(col(Member.unit_code).in_([u for u in actor.cadre_units if u]))
    rows = session.exec(query.order_by(Member.id).offset(offset).limit(limit))
    return list(rows)


def decide(session: Session, actor: Actor, member_id: int, approve: bool) -> Member:
    """Approve or decline a pending request, exactly once; only a cadre of the member's unit may.

    One conditional statement decides: UPDATE (approve) or DELETE (decline) ... WHERE status = 'pending'.
    Of two cadres deciding at the same moment, the second waits for the first and then matches nothing:
    it is told the request is gone. A declined request is removed so the person can register again with
    corrected details; the returned (detached) object still carries their Telegram id for the notice.
    """
    actor.require_cadre()
    conditions = [col(Member.id) == member_id, col(Member.status) == Status.PENDING]
    if not actor.is_bureau:
        conditions.append(col(Member.unit_code).in_([u for u in actor.cadre_units if u]))
    if approve:
        statement = update(Member).where(*conditions).values(status=Status.VERIFIED, verified_at=utcnow())
    else:
        statement = delete(Member).where(*conditions)
    row = session.exec(statement.returning(*Member.__table__.columns)).first()
    if row is None:
        current = session.get(Member, member_id, populate_existing=True)
        if current is None or current.status != Status.PENDING:
            raise NotFound("request_gone")
        raise NotAllowed()
    audit.record(session, actor.telegram_id, "approve_member" if approve else "decline_member", f"member:{member_id}")
    return Member(**row._mapping)


def cadres_of(session: Session, unit_code: str) -> list[Member]:
    """Verified cadres who can decide for this unit: its own cadres first, then bureau cadres and admins."""
    query = (
        select(Member)
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .where(
            Member.status == Status.VERIFIED,
            col(RoleGrant.role).in_([Role.CADRE, Role.ADMIN]),
            (col(RoleGrant.unit_code) == unit_code) | col(RoleGrant.unit_code).is_(None),
        )
        .order_by(col(RoleGrant.unit_code).is_(None), Member.id)
    )
    seen: dict[int, Member] = {}
    for member in session.exec(query):
        seen.setdefault(member.id, member)
    return list(seen.values())


def set_role(session: Session, actor: Actor, target: Member, role: Role, unit_code: str | None, grant: bool) -> None:
    """Give or take a role. Admins manage every role; a cadre may name volunteers in their own unit."""
    if not target.verified:
        raise NotFound("member_unknown")
    if not actor.is_admin:
        if role != Role.VOLUNTEER:
            raise NotAllowed()
        actor.require_unit(target.unit_code)
    held = [col(RoleGrant.member_id) == target.id, col(RoleGrant.role) == role]
    if grant:
        if role == Role.CADRE and unit_code is not None and session.get(UnitRow, unit_code) is None:
            raise NotFound("unit_unknown")
        scope = unit_code if role == Role.CADRE else None
        # Conditional statements, not read-modify-write: a concurrent demote or promote never makes this fail.
        rescoped = session.exec(update(RoleGrant).where(*held).values(unit_code=scope).returning(col(RoleGrant.id)))
        if rescoped.first() is None:
            try:
                with session.begin_nested():
                    session.add(RoleGrant(member_id=target.id, role=role, unit_code=scope))
                    session.flush()
            except IntegrityError:
                # Granted by someone else at the same moment: the scope given here is the one kept.
                session.exec(update(RoleGrant).where(*held).values(unit_code=scope))
    else:
        taken = session.exec(delete(RoleGrant).where(*held).returning(col(RoleGrant.id)))
        if taken.first() is None:
            raise DomainError("role_not_held")
    audit.record(
        session,
        actor.telegram_id,
        "promote" if grant else "demote",
        f"member:{target.id}",
        role=str(role),
        unit=unit_code,
    )


def languages_of(session: Session, telegram_ids: Iterable[int]) -> dict[int, str]:
    """The language each of these Telegram users chose, for those who are members (others are left out)."""
    ids = list(telegram_ids)
    if not ids:
        return {}
    rows = session.exec(select(Member.telegram_id, Member.language).where(col(Member.telegram_id).in_(ids)))
    return {telegram_id: language for telegram_id, language in rows if telegram_id is not None}


def staff_telegram_ids(session: Session) -> list[int]:
    """Telegram ids of verified members holding a cadre or admin role."""
    rows = session.exec(
        select(Member.telegram_id)
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .where(Member.status == Status.VERIFIED, col(RoleGrant.role).in_([Role.CADRE, Role.ADMIN]))
        .distinct()
    )
    return [tid for tid in rows if tid is not None]


def roles_of(session: Session, member_id: int) -> list[RoleGrant]:
    """The roles a member holds."""
    return list(session.exec(select(RoleGrant).where(RoleGrant.member_id == member_id)))


@dataclass(frozen=True)
class RosterRow:
    unit_code: str
    employee_no: str
    name: str
    birth_year: int | None


@dataclass(frozen=True)
class RosterResult:
    added: int
    updated: int
    verified: int
    # Rows identical to what the roster already held.
    unchanged: int = 0
    # Roster entries the file no longer lists (remove_missing), and the members erased with them.
    removed: int = 0
    erased: int = 0
    # Applicants this import verified (their requests were waiting): they are told.
    newly_verified: tuple[Member, ...] = ()


@dataclass(frozen=True)
class RosterRemoval:
    """A roster entry a new roster file no longer lists, and the verified member registered under it (if any)."""

    unit_code: str
    employee_no: str
    name: str
    member_id: int | None


def roster_removals(session: Session, rows: Iterable[RosterRow]) -> list[RosterRemoval]:
    """Roster entries of the units the file covers that it no longer lists; units absent from the file are kept."""
    rows = list(rows)
    listed = {(r.unit_code, r.employee_no) for r in rows}
    entries = session.exec(
        select(RosterEntry)
        .where(col(RosterEntry.unit_code).in_({r.unit_code for r in rows}))
        .order_by(col(RosterEntry.unit_code), col(RosterEntry.employee_no))
    )
    removals: list[RosterRemoval] = []
    for entry in entries:
        if (entry.unit_code, entry.employee_no) in listed:
            continue
        member = find_member(session, entry.unit_code, entry.employee_no)
        member_id = member.id if member is not None and member.status == Status.VERIFIED else None
        removals.append(RosterRemoval(entry.unit_code, entry.employee_no, entry.name, member_id))
    return removals


def preview_roster(session: Session, rows: Iterable[RosterRow]) -> tuple[RosterResult, list[RosterRemoval]]:
    """What import_roster(remove_missing=True) would do, reading only: the counts and the entries it would remove."""
    rows = list(rows)
    stored = {
        (e.unit_code, e.employee_no): (e.name, e.birth_year)
        for e in session.exec(select(RosterEntry).where(col(RosterEntry.unit_code).in_({r.unit_code for r in rows})))
    }
    added = updated = unchanged = 0
    for row in rows:
        before = stored.get((row.unit_code, row.employee_no))
        if before is None:
            added += 1
        elif before == (row.name, row.birth_year):
            unchanged += 1
        else:
            updated += 1
    removals = roster_removals(session, rows)
    erased = sum(r.member_id is not None for r in removals)
    return RosterResult(added, updated, 0, unchanged, len(removals), erased), removals


def import_roster(
    session: Session,
    rows: Iterable[RosterRow],
    actor_telegram_id: int = 0,
    *,
    remove_missing: bool = False,
    erase: Callable[[Session, int], object] | None = None,
) -> RosterResult:
    """Add or update roster rows, then verify pending requests the roster now confirms.

    With remove_missing, entries of the file's units that the file no longer lists are deleted and the verified
    member registered under each is erased by `erase(session, member_id)`: models.me.delete_account, which first
    releases and refunds their welfare claims, as deleting the account in /me does (erase_member by default).
    """
    rows = list(rows)
    added = updated = unchanged = 0
    for row in rows:
        entry = session.get(RosterEntry, (row.unit_code, row.employee_no))
        if entry is None:
            session.add(RosterEntry(**vars(row)))
            added += 1
        elif (entry.name, entry.birth_year) == (row.name, row.birth_year):
            unchanged += 1
        else:
            entry.name, entry.birth_year = row.name, row.birth_year
            updated += 1
    removed = erased = 0
    if remove_missing:
        for removal in roster_removals(session, rows):
            session.exec(
                delete(RosterEntry).where(
                    col(RosterEntry.unit_code) == removal.unit_code,
                    col(RosterEntry.employee_no) == removal.employee_no,
                )
            )
            removed += 1
            if removal.member_id is not None:
                (erase or erase_member)(session, removal.member_id)
                erased += 1
    session.flush()
    pending = session.exec(
        select(Member, RosterEntry)
        .join(
            RosterEntry,
            (col(RosterEntry.unit_code) == col(Member.unit_code))
            & (col(RosterEntry.employee_no) == col(Member.employee_no)),
        )
        .where(Member.status == Status.PENDING)
    )
    verified: list[Member] = []
    for member, entry in pending:
        if " ".join(entry.name.split()) == member.name:
            member.status, member.verified_at, member.birth_year = Status.VERIFIED, utcnow(), entry.birth_year
            verified.append(member)
    audit.record(
        session,
        actor_telegram_id,
        "import_roster",
        "",
        added=added,
        updated=updated,
        unchanged=unchanged,
        verified=len(verified),
        removed=removed,
        erased=erased,
    )
    return RosterResult(added, updated, len(verified), unchanged, removed, erased, tuple(verified))


def set_language(session: Session, member_id: int, language: str) -> None:
    """Remember the member's language."""
    session.exec(update(Member).where(col(Member.id) == member_id).values(language=language))


def toggle_ranking_opt_out(session: Session, member_id: int) -> bool:
    """Flip whether the member appears in rankings; returns the new opt-out value.

    One conditional UPDATE: two presses at once flip twice (no lost update), a deleted row is NotFound.
    """
    flipped = session.exec(
        update(Member)
        .where(col(Member.id) == member_id, col(Member.status) != Status.DELETED)
        .values(ranking_opt_out=not_(col(Member.ranking_opt_out)))
        .returning(col(Member.ranking_opt_out))
    ).first()
    if flipped is None:
        raise NotFound()
    return bool(flipped[0])


def mark_blocked(session: Session, telegram_id: int, blocked: bool = True) -> None:
    """Remember that this user blocked the bot (so later sends skip them), or unblocked it."""
    session.exec(update(Member).where(col(Member.telegram_id) == telegram_id).values(blocked_bot=blocked))


def erase_member(session: Session, member_id: int) -> None:
    """Delete an account: personal data goes, the ledger stays under an anonymous row so totals hold.

    Conditional statements, never read-modify-write: a second erase (at the same moment or later) is NotFound.
    Their roles and flows go, messages not sent to them yet are deleted and sent ones keep no text or chat id,
    and the raw updates they sent are forgotten. Welfare claims are released first by models/me.delete_account.
    """
    live = [col(Member.id) == member_id, col(Member.status) != Status.DELETED]
    # Locked until the end of the transaction: a concurrent erase waits here, then finds the row erased.
    telegram_id = session.exec(select(Member.telegram_id).where(*live).with_for_update()).first()
    erased = session.exec(
        update(Member)
        .where(*live)
        .values(telegram_id=None, employee_no=None, name=None, birth_year=None, status=Status.DELETED)
        .values(ranking_opt_out=True)
        .returning(col(Member.id))
    ).first()
    if erased is None:
        raise NotFound()
    session.exec(delete(RoleGrant).where(col(RoleGrant.member_id) == member_id))
    outbox.forget_recipient(session, member_id, telegram_id)
    if telegram_id is not None:
        flows.clear_flow(session, telegram_id)
        inbox.forget_user(session, telegram_id)
    audit.record(session, 0, "erase_member", f"member:{member_id}")


def count_by_status(session: Session, units: Iterable[str] | None = None) -> dict[str, int]:
    """How many members are in each status: in the given units, or in every unit (None)."""
    query = select(Member.status, func.count()).group_by(Member.status)
    if units is not None:
        query = query.where(col(Member.unit_code).in_(list(units)))
    return {status: n for status, n in session.exec(query)}
