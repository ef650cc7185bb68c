"""Administration (管理): /admin overview, /promote and /demote, /audit."""

from __future__ import annotations

from handlers.base import Command, Ctx, Need, handler
from handlers.menu import publish_chat_commands
from messages import pick_locale
from models import audit, members
from models.clock import to_local
from models.errors import BadInput, NotFound
from models.members import Role

AUDIT_SHOWN = 20
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


@handler(needs=Need.CADRE)
def show_admin(ctx: Ctx) -> None:
    """/admin: what a cadre can do, and how many requests wait."""
    counts = members.count_by_status(ctx.session)
    pending = members.pending_members(ctx.session, ctx.actor, 1000)
    managed = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    username = ctx.context.bot.username
    invites = [(u.name(ctx.locale), f"https://t.me/{username}?start=u_{u.code}") for u in managed]
    keyboard = [[ctx.button(key, action)] for key, action in ctx.services.admin_entries]
    ctx.reply(
        "admin/overview",
        keyboard,
        counts=counts,
        pending=len(pending),
        bureau=ctx.actor.is_bureau,
        scope=[name for name, _url in invites],
        invites=invites,
        is_admin=ctx.actor.is_admin,
    )


@handler(needs=Need.ADMIN)
def show_audit(ctx: Ctx) -> None:
    """/audit: the newest admin actions."""
    entries = audit.recent(ctx.session, AUDIT_SHOWN)
    rows = [{"at": to_local(e.at, ctx.config.timezone), "entry": e} for e in entries]
    ctx.reply("admin/audit", rows=rows)


COMMANDS = (
    Command("admin", show_admin, menu_order=100),
    Command("promote", promote),
    Command("demote", demote),
    Command("audit", show_audit),
)
