"""Rights consultation and hardship aid requests: the member's status, the handlers' queue, escalation, counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from models import audit
from models.care.tables import (
    KINDS,
    OPEN_REQUEST,
    STATUSES,
    CareRequest,
    CareRequestStep,
    RequestKind,
    RequestStatus,
)
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member, Role, RoleGrant, Status

# Where each status may go next.
NEXT = {
    RequestStatus.RECEIVED: (RequestStatus.IN_PROGRESS, RequestStatus.DECLINED),
    RequestStatus.IN_PROGRESS: (RequestStatus.ANSWERED, RequestStatus.APPROVED, RequestStatus.DECLINED),
}
CLOSING = (RequestStatus.ANSWERED, RequestStatus.APPROVED, RequestStatus.DECLINED)
MAX_AMOUNT = 1_000_000


@dataclass(frozen=True)
class HandlerScope:
    """Which requests a care handler sees: their units' requests, and escalated ones if they serve the bureau."""

    member_id: int
    units: frozenset[str]
    bureau: bool

    def sees(self, request: CareRequest) -> bool:
        """Whether this handler may see the request's content."""
        return request.unit_code in self.units or (self.bureau and request.escalated_at is not None)


def handler_scope(actor: Actor) -> HandlerScope:
    """The acting care handler's scope; NotAllowed for anyone without the care_handler role (admins included)."""
    if Role.CARE_HANDLER not in actor.roles or actor.member is None or not actor.is_cadre:
        raise NotAllowed()
    units = frozenset(u for u in actor.cadre_units if u is not None)
    return HandlerScope(actor.member.id, units, actor.is_bureau)


def create(
    session: Session,
    member: Member,
    kind: str,
    topic: str,
    description: str,
    contact: str | None,
    photo: str | None,
    now: datetime,
) -> CareRequest:
    """A member's new request, received."""
    if kind not in KINDS:
        raise BadInput("care_request_kind")
    request = CareRequest(
        member_id=member.id,
        unit_code=member.unit_code,
        kind=kind,
        topic=topic,
        description=description,
        contact=contact,
        photo_file_id=photo,
        created_at=now,
    )
    session.add(request)
    session.flush()
    session.add(CareRequestStep(request_id=request.id, status=RequestStatus.RECEIVED, at=now))
    return request


def handlers_of(session: Session, unit_code: str | None) -> list[Member]:
    """Verified care handlers of a unit (None: of the bureau)."""
    cadre = select(RoleGrant.member_id).where(
        RoleGrant.role == Role.CADRE,
        col(RoleGrant.unit_code).is_(None) if unit_code is None else col(RoleGrant.unit_code) == unit_code,
    )
    handler = select(RoleGrant.member_id).where(RoleGrant.role == Role.CARE_HANDLER)
    return list(
        session.exec(
            select(Member)
            .where(
                Member.status == Status.VERIFIED,
                col(Member.id).in_(cadre),
                col(Member.id).in_(handler),
            )
            .order_by(col(Member.id))
        )
    )


def my_requests(session: Session, member_id: int, limit: int) -> list[CareRequest]:
    """My requests, newest first."""
    return list(
        session.exec(
            select(CareRequest)
            .where(CareRequest.member_id == member_id)
            .order_by(col(CareRequest.id).desc())
            .limit(limit)
        )
    )


def steps_of(session: Session, request_id: int) -> list[CareRequestStep]:
    """A request's steps, oldest first."""
    return list(
        session.exec(
            select(CareRequestStep).where(CareRequestStep.request_id == request_id).order_by(col(CareRequestStep.id))
        )
    )


def my_request(session: Session, member_id: int, request_id: int) -> CareRequest:
    """One of my requests; NotFound for anyone else's."""
    request = session.get(CareRequest, request_id)
    if request is None or request.member_id != member_id:
        raise NotFound("care_request_unknown")
    return request


def queue(session: Session, actor: Actor, limit: int) -> list[CareRequest]:
    """Open requests this handler may see, the longest waiting first."""
    scope = handler_scope(actor)
    visible = col(CareRequest.unit_code).in_(list(scope.units))
    if scope.bureau:
        visible = visible | col(CareRequest.escalated_at).is_not(None)
    return list(
        session.exec(
            select(CareRequest)
            .where(col(CareRequest.status).in_(list(OPEN_REQUEST)), visible)
            .order_by(col(CareRequest.created_at))
            .limit(limit)
        )
    )


def _visible(session: Session, actor: Actor, request_id: int) -> CareRequest:
    """A request this handler may see; NotFound otherwise."""
    scope = handler_scope(actor)
    request = session.get(CareRequest, request_id)
    if request is None or not scope.sees(request):
        raise NotFound("care_request_unknown")
    return request


def handled_request(session: Session, actor: Actor, request_id: int) -> tuple[CareRequest, Member | None]:
    """A request this handler may see, with its member (the view is audited); NotFound otherwise."""
    request = _visible(session, actor, request_id)
    audit.record(session, actor.telegram_id, "care_view_request", f"care_request:{request_id}")
    return request, session.get(Member, request.member_id)


def allowed(request: CareRequest, status: RequestStatus) -> bool:
    """Whether a request may move to this status (aid is approved, a consultation answered)."""
    if status not in NEXT.get(RequestStatus(request.status), ()):
        return False
    if status == RequestStatus.APPROVED:
        return request.kind == RequestKind.AID
    if status == RequestStatus.ANSWERED:
        return request.kind == RequestKind.RIGHTS
    return True


def escalate_now(session: Session, request_id: int, now: datetime) -> None:
    """Send a request to the bureau's handlers at once (its unit has none)."""
    session.exec(
        update(CareRequest)
        .where(col(CareRequest.id) == request_id, col(CareRequest.escalated_at).is_(None))
        .values(escalated_at=now)
    )


def advance(
    session: Session, actor: Actor, request_id: int, status: str, note: str | None, amount: int | None, now: datetime
) -> CareRequest:
    """Move a request to its next status with a note for the member (an approved aid with its amount)."""
    request = _visible(session, actor, request_id)
    current = RequestStatus(request.status)
    if status not in STATUSES or not allowed(request, RequestStatus(status)):
        raise BadInput("care_request_moved", status=request.status)
    if status == RequestStatus.APPROVED and (amount is None or not 0 <= amount <= MAX_AMOUNT):
        raise BadInput("care_amount_range", high=MAX_AMOUNT)
    values: dict = {"status": status}
    if status == RequestStatus.IN_PROGRESS:
        values |= {"handler_id": actor.member.id, "taken_at": now}
    if status in CLOSING:
        values |= {"closed_at": now, "amount": amount if status == RequestStatus.APPROVED else None}
        if request.taken_at is None:
            values |= {"taken_at": now, "handler_id": actor.member.id}
    changed = session.exec(
        update(CareRequest)
        .where(col(CareRequest.id) == request_id, col(CareRequest.status) == current)
        .values(**values)
        .returning(col(CareRequest.id))
    ).first()
    if changed is None:
        raise BadInput("care_request_moved", status=request.status)
    session.add(CareRequestStep(request_id=request_id, status=status, note=note, at=now))
    audit.record(session, actor.telegram_id, "care_request_status", f"care_request:{request_id}", status=status)
    session.refresh(request)
    return request


def escalate_due(session: Session, now: datetime, after: timedelta) -> list[CareRequest]:
    """Requests nobody took within `after` (or whose unit has no handler) go to the bureau; each once."""
    waiting = session.exec(
        select(CareRequest).where(
            CareRequest.status == RequestStatus.RECEIVED,
            col(CareRequest.escalated_at).is_(None),
        )
    ).all()
    escalated = []
    for request in waiting:
        if request.created_at > now - after and handlers_of(session, request.unit_code):
            continue
        done = session.exec(
            update(CareRequest)
            .where(col(CareRequest.id) == request.id, col(CareRequest.escalated_at).is_(None))
            .values(escalated_at=now)
            .returning(col(CareRequest.id))
        ).first()
        if done is not None:
            session.refresh(request)
            escalated.append(request)
    return escalated


def erase_member(session: Session, member_id: int) -> None:
    """A deleted account: requests keep their kind, unit, status and times (for the counts), nothing personal."""
    ids = select(CareRequest.id).where(CareRequest.member_id == member_id)
    session.exec(update(CareRequestStep).where(col(CareRequestStep.request_id).in_(ids)).values(note=None))
    session.exec(
        update(CareRequest)
        .where(col(CareRequest.member_id) == member_id)
        .values(description=None, contact=None, photo_file_id=None)
    )
