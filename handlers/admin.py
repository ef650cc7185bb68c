"""Administration (管理): /admin overview, /promote and /demote, /audit."""

from __future__ import annotations

from buttons.admin import AuditPage, InvitePage
from config import Unit
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.members import INVITE_PREFIX
from handlers.menu import publish_chat_commands
from messages import pick_locale
from models import admin, members
from models.clock import to_local
from models.errors import BadInput, NotFound
from models.members import Role, Status

# Audit entries per page, and invite links per page (the overview of a bureau cadre pages through 21 units).
AUDIT_SHOWN = 20
INVITES_PAGE = 8
BUREAU = "bureau"


def _target(ctx: Ctx, unit_code: str, employee_no: str) -> members.Member:
    target = members.find_member(ctx.session, unit_code.lower(), employee_no)
    if target is None or not target.verified:
        raise NotFound("member_unknown")
    return target


def _role(text: str) -> Role:
    try:
        return Role(text.lower())
    except ValueError:
        raise BadInput("role_unknown", roles=[r.value for r in Role]) from None


@handler(write=True, needs=Need.CADRE)
def promote(ctx: Ctx) -> None:
    """/promote <unit> <employee_no> <role> [unit|bureau]: give a role (cadres of a unit by default)."""
    if len(ctx.args) not in (3, 4):
        raise BadInput("promote_usage")
    target = _target(ctx, ctx.args[0], ctx.args[1])
    role = _role(ctx.args[2])
    scope = ctx.args[3].lower() if len(ctx.args) == 4 else target.unit_code
    unit_code = None if scope == BUREAU else scope
    members.set_role(ctx.session, ctx.actor, target, role, unit_code, grant=True)
    unit = ctx.config.unit(unit_code) if unit_code else None
    ctx.reply("admin/promoted", name=target.name, role=role.value, unit=unit.name(ctx.locale) if unit else None)
    if target.telegram_id:
        locale = pick_locale(target.language)
        ctx.notify(target.telegram_id, ctx.t("admin/promoted_notice", locale, role=role.value))
        _refresh_commands(ctx, target.telegram_id)


@handler(write=True, needs=Need.CADRE)
def demote(ctx: Ctx) -> None:
    """/demote <unit> <employee_no> <role>: take a role away."""
    if len(ctx.args) != 3:
        raise BadInput("demote_usage")
    target = _target(ctx, ctx.args[0], ctx.args[1])
    role = _role(ctx.args[2])
    members.set_role(ctx.session, ctx.actor, target, role, None, grant=False)
    ctx.reply("admin/demoted", name=target.name, role=role.value)
    if target.telegram_id:
        _refresh_commands(ctx, target.telegram_id)


def _refresh_commands(ctx: Ctx, telegram_id: int) -> None:
    """After the commit, show the member the command list of their new standing."""

    async def refresh() -> None:
        await publish_chat_commands(ctx.context.application, telegram_id)

    ctx.after_commit.append(refresh)


def _invite(ctx: Ctx, unit: Unit) -> tuple[str, str]:
    """A unit's name and its invite link (/start u_<code> preselects the unit)."""
    return unit.name(ctx.locale), f"https://t.me/{ctx.context.bot.username}?start={INVITE_PREFIX}{unit.code}"


@handler(needs=Need.CADRE)
def show_admin(ctx: Ctx) -> None:
    """/admin: what a cadre can do, and how many members and requests there are in the units they serve.

    A unit cadre sees the invite links of their own units; a bureau cadre or admin (every unit) gets a button
    that pages through them.
    """
    actor = ctx.actor
    units = None if actor.is_bureau else [u for u in actor.cadre_units if u]
    counts = members.count_by_status(ctx.session, units)
    managed = [u for u in ctx.config.units if actor.can_manage(u.code)]
    invites = [] if actor.is_bureau else [_invite(ctx, u) for u in managed]
    keyboard = [[ctx.button(key, action)] for key, action in ctx.runtime.admin_entries]
    if actor.is_bureau:
        keyboard.append([ctx.button("invite_links", InvitePage(0))])
    ctx.reply(
        "admin/overview",
        keyboard,
        counts=counts,
        pending=counts.get(Status.PENDING, 0),
        bureau=actor.is_bureau,
        scope=[u.name(ctx.locale) for u in managed],
        invites=invites,
        is_admin=actor.is_admin,
    )


@handler(needs=Need.CADRE)
def show_invites(ctx: Ctx) -> None:
    """Button: one page of the invite links of the units this cadre serves."""
    page = ctx.pressed(InvitePage).page
    managed = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    pages = max(1, -(-len(managed) // INVITES_PAGE))
    page = min(page, pages - 1)
    shown = managed[page * INVITES_PAGE : (page + 1) * INVITES_PAGE]
    keyboard = ctx.pager(InvitePage, page=page, has_next=page + 1 < pages)
    ctx.show("admin/invites", keyboard, invites=[_invite(ctx, u) for u in shown], page=page, pages=pages)


@handler(needs=Need.ADMIN)
def show_audit(ctx: Ctx) -> None:
    """/audit: the admin actions, newest first, a page at a time: who did what to whom, by name."""
    page = ctx.callback.page if isinstance(ctx.callback, AuditPage) else 0
    rows, has_next = admin.audit_page(ctx.session, page, AUDIT_SHOWN)
    shown = [{**vars(r), "at": to_local(r.at, ctx.config.timezone)} for r in rows]
    ctx.show("admin/audit", ctx.pager(AuditPage, page=page, has_next=has_next), rows=shown, page=page)


SECTION = Section(
    "admin",
    commands=(
        Command("admin", show_admin, menu_order=100),
        Command("promote", promote),
        Command("demote", demote),
        Command("audit", show_audit),
    ),
    buttons={AuditPage: show_audit, InvitePage: show_invites},
)
