"""Clubs (星协俱乐部): /clubs, joining and requests, leaders' approvals and member lists, cadres' clubs, club groups.

A leader links the club's Telegram group with /linkclub <code> sent in the group (the bot must be an admin with
"invite users" and "ban users" rights). The bot then makes a join-request invite link, approves join requests
from verified members of the club only, removes members who leave the club (ban + unban, so they can come back
through a new request), follows the group to its supergroup id, and drops the link (telling the leaders) when
it is removed or loses its admin rights.
"""

from __future__ import annotations

import csv
import io
import logging
from functools import partial
from typing import Any

from telegram import ChatMemberAdministrator, ChatMemberOwner, InlineKeyboardButton
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ChatJoinRequestHandler, ChatMemberHandler, MessageHandler, filters

from buttons.clubs import (
    AdminClubs,
    Announce,
    ClubList,
    ClubMembers,
    ClubMembersCsv,
    ClubRequests,
    ConfirmRemoveMember,
    DecideRequest,
    JoinClub,
    LeaveClub,
    ManageClub,
    NameLeader,
    NewClub,
    RemoveLeader,
    RemoveMember,
    ShowClub,
)
from buttons.menu import CancelFlow, Home, OpenSection
from buttons.runs import ShowRun
from handlers import forms
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.forms import Field, Form
from models import clubs, members, runs
from models.clubs import ClubDraft, MemberStatus
from models.errors import BadInput, NotFound
from scheduled import runs as run_notices
from services import notify

log = logging.getLogger(__name__)

PAGE = 10
REQUESTS_SHOWN = 20
UPCOMING_SHOWN = 3
FORM = "clubs"
LEADER_FLOW = "clubs_leader"
ANNOUNCE_FLOW = "clubs_announce"
ANNOUNCEMENT_MAX = 2000
ERRORS = "clubs"
KIND_REQUEST = "clubs_request"
KIND_DECIDED = "clubs_decided"
KIND_GROUP = "clubs_group"
KIND_REMOVED = "clubs_removed"


def _club_view(ctx: Ctx, club: clubs.Club) -> dict[str, Any]:
    units = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    return {
        "id": club.id,
        "code": club.code,
        "name": club.name,
        "description": club.description,
        "open": club.open,
        "units": [units.get(u, u) for u in clubs.units_of(club)],
        "linked": club.chat_id is not None,
        "invite_link": club.invite_link,
    }


# --- members ---------------------------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_clubs(ctx: Ctx) -> None:
    """/clubs: the clubs open to my unit, with leaders, member counts and how to join."""
    pressed = ctx.callback
    page = (pressed.page or 0) if isinstance(pressed, ClubList) else 0
    found = clubs.list_clubs(ctx.session, ctx.member, PAGE + 1, page * PAGE)
    shown = found[:PAGE]
    keyboard = [[ctx.button("clubs_item", ShowClub(r.club.id), name=r.club.name, mine=r.mine or "")] for r in shown]
    keyboard += ctx.pager(ClubList, page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("home", Home())])
    rows = [
        {"club": _club_view(ctx, r.club), "members": r.members, "leaders": r.leaders, "mine": r.mine} for r in shown
    ]
    ctx.show("clubs/list", keyboard, clubs=rows)


def _card_keyboard(ctx: Ctx, card: clubs.ClubCard, events: list[runs.Event]) -> list[list[InlineKeyboardButton]]:
    club, rows = card.club, []
    if card.mine is None and card.can_join:
        rows.append([ctx.button("clubs_join" if club.open else "clubs_request", JoinClub(club.id))])
    elif card.mine == MemberStatus.PENDING:
        rows.append([ctx.button("clubs_withdraw", LeaveClub(club.id))])
    if card.mine == MemberStatus.MEMBER:
        tz = ctx.config.timezone
        rows += [[ctx.button("runs_item", ShowRun(e.id), at=e.starts_at.astimezone(tz), place=e.place)] for e in events]
        if club.invite_link:
            rows.append([InlineKeyboardButton(ctx.label("clubs_group"), url=club.invite_link)])
    if card.is_leader:
        rows.append(
            [
                ctx.button("clubs_requests", ClubRequests(club.id), count=card.pending),
                ctx.button("clubs_csv", ClubMembersCsv(club.id)),
            ]
        )
        rows.append([ctx.button("clubs_members", ClubMembers(club.id), count=card.members)])
        if club.chat_id is not None:
            rows.append([ctx.button("clubs_announce", Announce(club.id))])
    if card.mine == MemberStatus.MEMBER:
        rows.append([ctx.button("clubs_leave", LeaveClub(club.id))])
    rows.append([ctx.button("clubs_back", ClubList())])
    return rows


def _show_card(ctx: Ctx, club_id: int) -> None:
    card = clubs.card(ctx.session, ctx.member, club_id)
    events = []
    if card.mine == MemberStatus.MEMBER:
        found = runs.upcoming(ctx.session, ctx.member, ctx.now, UPCOMING_SHOWN * 4, club_only=True)
        events = [e for e in found if e.club_id == club_id][:UPCOMING_SHOWN]
    tz = ctx.config.timezone
    context = {
        "club": _club_view(ctx, card.club),
        "members": card.members,
        "leaders": card.leaders,
        "mine": card.mine,
        "is_leader": card.is_leader,
        "pending": card.pending,
        "events": [run_notices.run_view(e, tz) for e in events],
    }
    keyboard = _card_keyboard(ctx, card, events)
    if card.club.photo_file_id:
        ctx.show_photo("clubs/card", card.club.photo_file_id, keyboard, **context)
    else:
        ctx.show("clubs/card", keyboard, **context)


@handler(needs=Need.VERIFIED)
def show_club(ctx: Ctx) -> None:
    """Button: one club's card."""
    _show_card(ctx, ctx.pressed(ShowClub).club_id)


@handler(write=True, needs=Need.VERIFIED)
def join_club(ctx: Ctx) -> None:
    """Button: join an open club at once, or ask the leaders (they get Approve / Decline buttons)."""
    club_id = ctx.pressed(JoinClub).club_id
    status = clubs.join(ctx.session, ctx.member, club_id, ctx.now)
    ctx.toast = ctx.label(f"clubs_toast_{status}")
    if status == MemberStatus.PENDING:
        club = clubs.get_club(ctx.session, club_id)
        for leader in clubs.leaders_to_tell(ctx.session, club_id):
            keyboard = [
                [
                    ctx.button("approve", DecideRequest(club_id, ctx.member.id, 1), leader.language),
                    ctx.button("decline", DecideRequest(club_id, ctx.member.id, 0), leader.language),
                ]
            ]
            text = ctx.t("clubs/request_notice", leader.language, club=club.name, name=ctx.member.name or "")
            key = f"clubs:request:{club_id}:{ctx.member.id}:{int(ctx.now.timestamp())}:{leader.member_id}"
            ctx.notify(leader.telegram_id, text, keyboard, kind=KIND_REQUEST, dedupe_key=key)
    _show_card(ctx, club_id)


def remove_from_groups(ctx: Ctx, chat_ids: list[int], telegram_id: int | None) -> None:
    """After the commit: ban and at once unban in each group, so they are out but may come back by a new request.

    Telegram's refusals are expected, not failures: the bot is no longer an admin ("not enough rights"), was removed
    (Forbidden), or the user is not in the group. Each group is tried on its own; nothing is raised.
    """
    if telegram_id is None or not chat_ids:
        return
    bot = ctx.context.bot

    async def remove() -> None:
        for chat_id in chat_ids:
            try:
                await bot.ban_chat_member(chat_id, telegram_id)
            except Forbidden:
                log.info("club group removal: the bot is no longer in the group")
                continue
            except BadRequest as exc:
                # "not enough rights" / "user not found" / "participant_id_invalid": nothing to undo.
                log.info("club group removal refused: %s", exc.message)
                continue
            except TelegramError as exc:
                log.info("club group removal failed: %s", type(exc).__name__)
                continue
            try:
                await bot.unban_chat_member(chat_id, telegram_id, only_if_banned=True)
            except TelegramError as exc:
                # Still banned: a new join request would not reach the bot. Logged for an admin to lift by hand.
                log.warning("club group unban failed after a removal: %s", type(exc).__name__)

    ctx.after_commit.append(remove)


@handler(write=True, needs=Need.VERIFIED)
def leave_club(ctx: Ctx) -> None:
    """Button: leave the club (and its group), or withdraw my request."""
    club_id = ctx.pressed(LeaveClub).club_id
    left = clubs.leave(ctx.session, ctx.member, club_id)
    remove_from_groups(ctx, [left.chat_id] if left.chat_id is not None else [], left.telegram_id)
    ctx.toast = ctx.label("clubs_toast_left")
    _show_card(ctx, club_id)


# --- leaders ---------------------------------------------------------------------------------------------------------


def _show_requests(ctx: Ctx, club_id: int) -> None:
    waiting = clubs.pending(ctx.session, ctx.member, club_id, REQUESTS_SHOWN)
    club = clubs.get_club(ctx.session, club_id)
    keyboard = [
        [
            ctx.button("approve_named", DecideRequest(club_id, p.member_id, 1), name=p.name),
            ctx.button("decline", DecideRequest(club_id, p.member_id, 0)),
        ]
        for p in waiting
    ]
    keyboard.append([ctx.button("clubs_back_card", ShowClub(club_id))])
    ctx.show("clubs/requests", keyboard, club=club.name, names=[p.name for p in waiting])


@handler(needs=Need.VERIFIED)
def show_requests(ctx: Ctx) -> None:
    """Button (leader): requests waiting for a decision."""
    _show_requests(ctx, ctx.pressed(ClubRequests).club_id)


@handler(write=True, needs=Need.VERIFIED)
def decide_request(ctx: Ctx) -> None:
    """Button (leader): approve or decline a request; the member is told (with the group's link if approved)."""
    press = ctx.pressed(DecideRequest)
    approve = press.approve == 1
    who = clubs.decide(ctx.session, ctx.member, press.club_id, press.member_id, approve)
    club = clubs.get_club(ctx.session, press.club_id)
    if who is not None:
        text = ctx.t("clubs/decided", who.language, club=club.name, approved=approve, link=club.invite_link)
        keyboard = [[ctx.button("clubs_open", ShowClub(club.id), who.language)]] if approve else None
        key = f"clubs:decided:{club.id}:{who.member_id}:{int(ctx.now.timestamp())}"
        ctx.notify(who.telegram_id, text, keyboard, kind=KIND_DECIDED, dedupe_key=key)
    ctx.toast = ctx.label("clubs_toast_approved" if approve else "clubs_toast_declined")
    _show_requests(ctx, press.club_id)


def _show_members(ctx: Ctx, club_id: int, page: int) -> None:
    found = clubs.member_list(ctx.session, ctx.member, club_id, PAGE + 1, page * PAGE)
    shown = found[:PAGE]
    club = clubs.get_club(ctx.session, club_id)
    keyboard = [
        [ctx.button("clubs_remove_member", RemoveMember(club_id, line.person.member_id), name=line.person.name)]
        for line in shown
        if not line.leader and line.person.member_id != ctx.member.id
    ]
    keyboard += ctx.pager(partial(ClubMembers, club_id), page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("clubs_back_card", ShowClub(club_id))])
    lines = [{"name": line.person.name, "leader": line.leader} for line in shown]
    ctx.show("clubs/members", keyboard, club=club.name, members=lines, page=page)


@handler(needs=Need.VERIFIED)
def show_members(ctx: Ctx) -> None:
    """Button (leader): the club's members, each with a Remove button (leaders excepted)."""
    pressed = ctx.pressed(ClubMembers)
    _show_members(ctx, pressed.club_id, pressed.page or 0)


@handler(needs=Need.VERIFIED)
def ask_remove_member(ctx: Ctx) -> None:
    """Button (leader): are you sure? Removing also takes them out of the club's group."""
    press = ctx.pressed(RemoveMember)
    who = clubs.club_member(ctx.session, ctx.member, press.club_id, press.member_id)
    club = clubs.get_club(ctx.session, press.club_id)
    keyboard = [
        [ctx.button("clubs_remove_confirm", ConfirmRemoveMember(press.club_id, press.member_id))],
        [ctx.button("clubs_remove_keep", ClubMembers(press.club_id))],
    ]
    ctx.show("clubs/confirm_remove", keyboard, club=club.name, name=who.name, linked=club.chat_id is not None)


@handler(write=True, needs=Need.VERIFIED)
def remove_member(ctx: Ctx) -> None:
    """Button (leader): remove the member from the club and its group (ban + unban); they are told."""
    press = ctx.pressed(ConfirmRemoveMember)
    removed = clubs.remove_member(ctx.session, ctx.member, press.club_id, press.member_id)
    remove_from_groups(ctx, [removed.chat_id] if removed.chat_id is not None else [], removed.telegram_id)
    who = removed.person
    if who is not None:
        text = ctx.t("clubs/removed_notice", who.language, club=removed.club.name)
        key = f"clubs:removed:{removed.club.id}:{who.member_id}:{ctx.update.update_id}"
        ctx.notify(who.telegram_id, text, kind=KIND_REMOVED, dedupe_key=key)
    ctx.toast = ctx.label("clubs_toast_member_removed")
    _show_members(ctx, press.club_id, 0)


@handler(needs=Need.VERIFIED)
def members_csv(ctx: Ctx) -> None:
    """Button (leader or cadre): the club's member list as a CSV file."""
    club, rows = clubs.roster(ctx.session, ctx.actor, ctx.pressed(ClubMembersCsv).club_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "unit", "employee_no", "status", "leader", "joined_at"])
    tz = ctx.config.timezone
    for member, row in rows:
        joined = row.joined_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        writer.writerow([member.name, member.unit_code, member.employee_no, row.status, int(row.leader), joined])
    # A BOM so spreadsheet programs read the Chinese names as UTF-8.
    content = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    ctx.send_document(content, f"club-{club.code}.csv", "clubs/csv_caption", club=club.name, count=len(rows))


@handler(write=True, needs=Need.VERIFIED)
def ask_announcement(ctx: Ctx) -> None:
    """Button (leader): type an announcement for the club's group."""
    club = clubs.group_for_announcement(ctx.session, ctx.member, ctx.pressed(Announce).club_id)
    ctx.set_flow(ANNOUNCE_FLOW, "text", {"club_id": club.id})
    ctx.reply("clubs/ask_announcement", [[ctx.button("cancel", CancelFlow())]], club=club.name)


def announcement_text(ctx: Ctx, text: str) -> None:
    """The announcement: posted in the club's group through the outbox (paced, never flooding the group)."""
    state = ctx.section_flow(ANNOUNCE_FLOW)
    body = text.strip()
    if not body:
        raise BadInput("clubs_text_empty")
    if len(body) > ANNOUNCEMENT_MAX:
        raise BadInput("clubs_text_too_long", max=ANNOUNCEMENT_MAX)
    club = clubs.group_for_announcement(ctx.session, ctx.member, state.data["club_id"])
    post = ctx.t("clubs/announcement", ctx.config.default_language, club=club.name, text=body, by=ctx.member.name or "")
    ctx.require_write()
    key = f"clubs:announce:{club.id}:{ctx.update.update_id}"
    ctx.notices += notify(ctx.session, club.chat_id, post, now=ctx.now, kind=KIND_GROUP, dedupe_key=key, personal=False)
    ctx.clear_flow(ANNOUNCE_FLOW)
    ctx.reply("clubs/announced", club=club.name)


# --- cadres ----------------------------------------------------------------------------------------------------------


@handler(needs=Need.CADRE)
def admin_clubs(ctx: Ctx) -> None:
    """/admin → Clubs: the clubs this cadre manages and a button to create one."""
    found = clubs.managed_clubs(ctx.session, ctx.actor)
    keyboard = [[ctx.button("clubs_item", ManageClub(c.id), name=c.name, mine="")] for c in found[:PAGE]]
    keyboard.append([ctx.button("clubs_new", NewClub())])
    keyboard.append([ctx.button("back", OpenSection("admin"))])
    ctx.show("clubs/admin_list", keyboard, clubs=[_club_view(ctx, c) for c in found[:PAGE]])


def _show_manage(ctx: Ctx, club_id: int) -> None:
    club = clubs.managed_club(ctx.session, ctx.actor, club_id)
    heads = clubs.leaders(ctx.session, club_id)
    names = [m.name or "" for m in heads]
    keyboard = [[ctx.button("clubs_remove_leader", RemoveLeader(club_id, m.id), name=m.name or "")] for m in heads]
    keyboard += [
        [ctx.button("clubs_name_leader", NameLeader(club_id)), ctx.button("clubs_csv", ClubMembersCsv(club_id))],
        [ctx.button("clubs_back_admin", AdminClubs())],
    ]
    ctx.show("clubs/admin_card", keyboard, club=_club_view(ctx, club), leaders=names)


@handler(needs=Need.CADRE)
def manage_club(ctx: Ctx) -> None:
    """Button (cadre): one club with its leaders and the member list."""
    _show_manage(ctx, ctx.pressed(ManageClub).club_id)


@handler(write=True, needs=Need.CADRE)
def name_leader(ctx: Ctx) -> None:
    """Button (cadre): type the new leader's unit code and employee number."""
    club_id = clubs.managed_club(ctx.session, ctx.actor, ctx.pressed(NameLeader).club_id).id
    ctx.set_flow(LEADER_FLOW, "who", {"club_id": club_id})
    ctx.reply("clubs/ask_leader", [[ctx.button("cancel", CancelFlow())]])


def leader_text(ctx: Ctx, text: str) -> None:
    """The new leader: '<unit code> <employee no>' (they become a member of the club if not one yet)."""
    state = ctx.section_flow(LEADER_FLOW)
    parts = text.split()
    if len(parts) != 2:
        raise BadInput("clubs_leader_format")
    target = members.find_member(ctx.session, parts[0].lower(), parts[1])
    if target is None or not target.verified:
        raise NotFound("member_unknown")
    club_id = state.data["club_id"]
    clubs.set_leader(ctx.session, ctx.actor, club_id, target, True, ctx.now)
    ctx.clear_flow(LEADER_FLOW)
    ctx.reply("clubs/leader_named", name=target.name or "", club=clubs.get_club(ctx.session, club_id).name)
    _show_manage(ctx, club_id)


@handler(write=True, needs=Need.CADRE)
def remove_leader(ctx: Ctx) -> None:
    """Button (cadre): the member is no longer a leader of the club (they stay a member)."""
    press = ctx.pressed(RemoveLeader)
    target = ctx.session.get(members.Member, press.member_id)
    if target is None:
        raise NotFound("member_unknown")
    clubs.set_leader(ctx.session, ctx.actor, press.club_id, target, False, ctx.now)
    ctx.toast = ctx.label("clubs_toast_leader_removed")
    _show_manage(ctx, press.club_id)


@handler(write=True, needs=Need.CADRE)
def new_club(ctx: Ctx) -> None:
    """Button (cadre): the step-by-step creation of a club."""
    forms.start_form(ctx, FORM)


_text = partial(forms.text_answer, ERRORS)


def _code(_ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
    code = text.strip().lower()
    if not clubs.CODE_PATTERN.match(code):
        raise BadInput("clubs_code_invalid", code=code[: clubs.CODE_MAX * 2])
    return code


def _photo_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> str:
    raise BadInput("clubs_photo_expected")


def _open_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label("clubs_open_yes"), "open"), (ctx.label("clubs_open_no"), "approval")]


def _unit_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    managed = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    everyone = [(ctx.label("clubs_all_units"), "all")] if ctx.actor.is_bureau else []
    return everyone + [(u.name(ctx.locale), u.code) for u in managed]


def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    ticked = data["units"]
    draft = ClubDraft(
        code=data["code"],
        name=data["name"],
        description=data.get("description") or "",
        open=data["open"] == "open",
        units=() if "all" in ticked else tuple(ticked),
        photo_file_id=data.get("photo"),
    )
    known = {u.code for u in ctx.config.units}
    club, created = clubs.save_club(ctx.session, ctx.actor, draft, known, ctx.now)
    ctx.reply("clubs/saved", name=club.name, created=created)
    _show_manage(ctx, club.id)


CLUB_FORM = forms.register_form(
    Form(
        FORM,
        (
            Field("code", parse=_code),
            Field("name", parse=_text(clubs.NAME_MAX)),
            Field("description", parse=_text(clubs.DESCRIPTION_MAX), optional=True),
            Field("photo", parse=_photo_text, optional=True, accepts_photo=True),
            Field("open", choices=_open_choices),
            Field("units", choices=_unit_choices, multiple=True),
        ),
        _create,
    )
)


# --- the club's group ------------------------------------------------------------------------------------------------


@handler(write=True, needs=Need.VERIFIED, private=False)
def link_club(ctx: Ctx) -> None:
    """/linkclub <code> in the club's group (a leader): link it and make the join-request invite link."""
    chat = ctx.update.effective_chat
    if chat.type not in ("group", "supergroup"):
        raise BadInput("clubs_link_in_group")
    if len(ctx.args) != 1:
        raise BadInput("clubs_link_usage")
    club = clubs.link_group(ctx.session, ctx.member, ctx.args[0], chat.id)
    bot, db, club_id, chat_id = ctx.context.bot, ctx.services.db, club.id, chat.id
    no_rights = ctx.t("clubs/group_no_rights", club=club.name)

    async def make_link() -> None:
        try:
            link = await bot.create_chat_invite_link(chat_id, name=club.code, creates_join_request=True)
        except TelegramError as exc:
            log.info("could not create a club group's invite link: %s", exc)
            await bot.send_message(chat_id, no_rights)
            return
        await db.write(clubs.set_invite_link, club_id, chat_id, link.invite_link)

    ctx.after_commit.append(make_link)
    ctx.reply("clubs/group_linked", club=club.name)


@handler(write=True, needs=Need.VERIFIED, private=False)
def unlink_club(ctx: Ctx) -> None:
    """/unlinkclub in the group (a leader of its club): the group is no longer the club's."""
    chat_id = ctx.update.effective_chat.id
    club = clubs.club_of_chat(ctx.session, chat_id)
    if club is None:
        raise BadInput("clubs_not_linked")
    if ctx.member.id not in clubs.leader_ids(ctx.session, club.id):
        raise clubs.NotLeader()
    clubs.unlink_group(ctx.session, chat_id)
    ctx.reply("clubs/group_unlinked", club=club.name)


@handler(write=True, needs=Need.ANYONE, private=False)
def join_request(ctx: Ctx) -> None:
    """A request to join a linked group: approved for verified members of its club, declined (and told) otherwise."""
    request = ctx.update.chat_join_request
    club, allowed = clubs.may_enter(ctx.session, request.chat.id, request.from_user.id)
    if club is None:
        return
    chat_id, user_id, bot = request.chat.id, request.from_user.id, ctx.context.bot

    async def decide() -> None:
        try:
            if allowed:
                await bot.approve_chat_join_request(chat_id, user_id)
            else:
                await bot.decline_chat_join_request(chat_id, user_id)
        except TelegramError as exc:
            log.info("could not answer a club group's join request: %s", exc)

    ctx.after_commit.append(decide)
    if not allowed:
        # Sent to the user's private chat (Telegram allows it for a while after a join request).
        ctx.reply("clubs/join_declined", [[ctx.button("clubs_open", ShowClub(club.id))]], club=club.name)


def _tell_leaders(ctx: Ctx, club: clubs.Club, template: str, key: str) -> None:
    for leader in clubs.leaders_to_tell(ctx.session, club.id):
        text = ctx.t(template, leader.language, club=club.name)
        ctx.notify(leader.telegram_id, text, kind=KIND_GROUP, dedupe_key=f"{key}:{leader.member_id}")


@handler(write=True, needs=Need.ANYONE, private=False)
def bot_status_changed(ctx: Ctx) -> None:
    """The bot was removed from a linked group or lost its admin rights: drop the link and tell the leaders."""
    change = ctx.update.my_chat_member
    new = change.new_chat_member
    still_admin = isinstance(new, ChatMemberOwner) or (
        isinstance(new, ChatMemberAdministrator) and new.can_invite_users and new.can_restrict_members
    )
    if still_admin:
        return
    club = clubs.unlink_group(ctx.session, change.chat.id)
    if club is None:
        return
    removed = new.status in ("left", "kicked")
    stamp = int(change.date.timestamp())
    _tell_leaders(
        ctx,
        club,
        f"clubs/group_{'removed' if removed else 'rights_lost'}",
        f"clubs:drop:{club.id}:{new.status}:{stamp}",
    )


@handler(write=True, needs=Need.ANYONE, private=False)
def group_migrated(ctx: Ctx) -> None:
    """The group became a supergroup: the link follows it; a new invite link is made, the leaders are told."""
    message = ctx.update.effective_message
    new_id = message.migrate_to_chat_id
    if new_id is None:
        return
    club = clubs.migrate_group(ctx.session, message.chat.id, new_id)
    if club is None:
        return
    bot, db, club_id, code = ctx.context.bot, ctx.services.db, club.id, club.code

    async def make_link() -> None:
        try:
            link = await bot.create_chat_invite_link(new_id, name=code, creates_join_request=True)
        except TelegramError as exc:
            log.info("could not create a migrated club group's invite link: %s", exc)
            return
        await db.write(clubs.set_invite_link, club_id, new_id, link.invite_link)

    ctx.after_commit.append(make_link)
    _tell_leaders(ctx, club, "clubs/group_migrated", f"clubs:migrated:{club.id}:{new_id}")


SECTION = Section(
    "clubs",
    commands=(
        Command("clubs", show_clubs, menu_order=35),
        Command("linkclub", link_club),
        Command("unlinkclub", unlink_club),
    ),
    buttons={
        ClubList: show_clubs,
        ShowClub: show_club,
        JoinClub: join_club,
        LeaveClub: leave_club,
        ClubRequests: show_requests,
        DecideRequest: decide_request,
        ClubMembersCsv: members_csv,
        ClubMembers: show_members,
        RemoveMember: ask_remove_member,
        ConfirmRemoveMember: remove_member,
        AdminClubs: admin_clubs,
        NewClub: new_club,
        ManageClub: manage_club,
        NameLeader: name_leader,
        RemoveLeader: remove_leader,
        Announce: ask_announcement,
    },
    flows={FORM: forms.answer_text, LEADER_FLOW: leader_text, ANNOUNCE_FLOW: announcement_text},
    admin_entries=(("clubs_admin", AdminClubs()),),
    handlers=(
        ChatJoinRequestHandler(join_request),
        ChatMemberHandler(bot_status_changed, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, group_migrated),
    ),
)
