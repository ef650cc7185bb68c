"""Welfare (会员福利): catalog, item cards, claims, vouchers, redeeming, and the cadres' item management."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from telegram import InlineKeyboardButton

from buttons import Button
from buttons.menu import CancelFlow, Home
from buttons.welfare import (
    AdminList,
    AskCancel,
    CancelClaim,
    Catalog,
    ClaimItem,
    CloseItem,
    EditItem,
    ItemClaims,
    ManageItem,
    MyWelfare,
    NewItem,
    PublishItem,
    Redeem,
    Remind,
    ShowItem,
    ShowVoucher,
    Withdraw,
)
from handlers import forms
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.forms import Field, Form
from models import vouchers, welfare
from models.errors import BadInput, DomainError, NotFound
from models.welfare import ClaimStatus, ItemDraft, Mode, Phase, SoldOut
from services import Services

CLAIMS_PAGE = 20
# Items per page of the catalog, of "My welfare" and of a cadre's item list (their templates fit this many).
PAGE = welfare.CATALOG_SIZE
FORM = "welfare"
EDIT_FLOW = "welfare_edit"
# The item form's messages: errors/welfare_text_empty, welfare_number_range, welfare_time_past, ...
ERRORS = "welfare"
# The answer "open as soon as it is published" to the opening-time question.
OPEN_NOW = "now"
EDITABLE = ("title", "description", "pickup", "cost", "stock", "opens_at", "closes_at", "redeem_by")


def _local(ctx: Ctx, at: datetime | None) -> datetime | None:
    return at.astimezone(ctx.config.timezone) if at is not None else None


def _item_view(ctx: Ctx, item: welfare.WelfareItem, phase: Phase) -> dict[str, Any]:
    """What every template needs to show an item (every described field, welfare.DESCRIBED), times in local time."""
    view: dict[str, Any] = {name: getattr(item, name) for name in welfare.DESCRIBED}
    view.update({name: _local(ctx, getattr(item, name)) for name in ("opens_at", "closes_at", "redeem_by")})
    return view | {
        "id": item.id,
        "stock": item.stock,
        "total": item.total,
        "limit": item.per_member_limit,
        "phase": phase.value,
        "seed_hash": item.seed_hash,
        "seed": item.seed if item.drawn_at else None,
        "outcome": item.outcome,
        "status": item.status,
    }


def _page(ctx: Ctx, kind: type[Catalog | MyWelfare | AdminList]) -> int:
    """The page a list button asks for (0 for the command, the menu button and old buttons made without a page)."""
    pressed = ctx.callback
    return (pressed.page or 0) if isinstance(pressed, kind) else 0


# --- members ---------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_catalog(ctx: Ctx) -> None:
    """/welfare: items open now and upcoming for my unit, a page at a time."""
    page = _page(ctx, Catalog)
    found = welfare.list_catalog(ctx.session, ctx.member, ctx.now, PAGE + 1, page * PAGE)
    entries = found[:PAGE]
    keyboard = [[ctx.button("welfare_item", ShowItem(e.item.id), title=e.item.title)] for e in entries]
    keyboard += ctx.pager(Catalog, page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("welfare_mine", MyWelfare()), ctx.button("home", Home())])
    ctx.show("welfare/catalog", keyboard, items=[_item_view(ctx, e.item, e.phase) for e in entries])


def _card_buttons(ctx: Ctx, card: welfare.ItemCard) -> list[list[InlineKeyboardButton]]:
    item, rows = card.item, []
    held = [c for c in card.my_claims if c.status in (ClaimStatus.APPLIED, ClaimStatus.JOINED)]
    if card.phase == Phase.UPCOMING and not card.reminded:
        rows.append([ctx.button("welfare_remind", Remind(item.id))])
    if card.phase == Phase.OPEN:
        if held:
            rows.append([ctx.button(f"welfare_withdraw_{item.mode}", Withdraw(item.id))])
        elif card.next_seq is not None and (item.mode == Mode.LOTTERY or item.stock is None or item.stock > 0):
            rows.append([ctx.button(f"welfare_claim_{item.mode}", ClaimItem(item.id, card.next_seq), cost=item.cost)])
    rows.append([ctx.button("welfare_back", Catalog()), ctx.button("welfare_mine", MyWelfare())])
    return rows


def _show_card(ctx: Ctx, item_id: int) -> None:
    card = welfare.item_card(ctx.session, ctx.member, item_id, ctx.now)
    view = _item_view(ctx, card.item, card.phase)
    mine = [{"status": c.status, "code": c.voucher_code} for c in card.my_claims]
    context = {"item": view, "mine": mine, "taken": card.taken, "reminded": card.reminded, "balance": card.balance}
    if card.item.photo_file_id:
        ctx.show_photo("welfare/card", card.item.photo_file_id, _card_buttons(ctx, card), **context)
    else:
        ctx.show("welfare/card", _card_buttons(ctx, card), **context)


@handler(needs=Need.VERIFIED)
def show_item(ctx: Ctx) -> None:
    """Button: one item's card with the button its state allows."""
    _show_card(ctx, ctx.pressed(ShowItem).item_id)


def _send_voucher(ctx: Ctx, claim: welfare.WelfareClaim, item: welfare.WelfareItem, *, new: bool) -> None:
    """The voucher: QR image (deep link for the cadre's camera) with the code and how to collect.

    A new voucher is a durable outbox row written with the claim, so a crash after the COMMIT never loses
    it; showing it again is a plain reply. Either way the QR image is drawn by the sender, off the event loop.
    """
    keyboard = None
    if claim.status == ClaimStatus.ACTIVE:
        keyboard = [[ctx.button("welfare_cancel", AskCancel(claim.id))]]
    view = _item_view(ctx, item, welfare.phase_of(item, ctx.now))
    fields = {"item": view, "code": claim.voucher_code, "status": claim.status}
    photo = vouchers.qr_ref(claim.voucher_code)
    if new:
        caption = ctx.t("welfare/voucher", **fields)
        ctx.notify(ctx.chat_id, caption, keyboard, kind="voucher", photo=photo, dedupe_key=f"voucher:{claim.id}")
    else:
        ctx.show_photo("welfare/voucher", photo, keyboard, **fields)


def known_sold_out(services: Services, pressed: Button) -> DomainError | None:
    """A press on an item this process saw sold out moments ago is answered from memory (models/stock_cache.py)."""
    return SoldOut() if isinstance(pressed, ClaimItem) and services.soldout.sold_out(pressed.item_id) else None


@handler(needs=Need.VERIFIED, fast=known_sold_out)
def claim_item(ctx: Ctx) -> None:
    """Button: claim, apply or join. Late presses are answered from memory or a read; only a real chance writes."""
    press = ctx.pressed(ClaimItem)
    item_id, seq = press.item_id, press.slot
    now = ctx.now
    try:
        welfare.claim_precheck(ctx.session, ctx.member, item_id, now)
        ctx.require_write()
        result = welfare.claim(ctx.session, ctx.member, item_id, now, ctx.config.timezone, seq)
    except SoldOut:
        ctx.services.soldout.mark(item_id)
        raise
    item = ctx.session.get(welfare.WelfareItem, item_id)
    ctx.toast = ctx.label(f"welfare_done_{item.mode}")
    _show_card(ctx, item_id)
    if result.created and result.claim.voucher_code:
        _send_voucher(ctx, result.claim, item, new=True)


@handler(write=True, needs=Need.VERIFIED)
def withdraw(ctx: Ctx) -> None:
    """Button: take back a lottery application or leave a group-buy; the held points come back."""
    item_id = ctx.pressed(Withdraw).item_id
    item = ctx.session.get(welfare.WelfareItem, item_id)
    if item is None:
        raise NotFound("welfare_item_unknown")
    take_back = welfare.withdraw_application if item.mode == Mode.LOTTERY else welfare.leave_group_buy
    result = take_back(ctx.session, ctx.member, item_id, ctx.now, ctx.config.timezone)
    ctx.toast = ctx.label("welfare_refunded", amount=result.refunded)
    _show_card(ctx, item_id)


@handler(write=True, needs=Need.VERIFIED)
def remind(ctx: Ctx) -> None:
    """Button: tell me when this upcoming item opens."""
    item_id = ctx.pressed(Remind).item_id
    welfare.remind_me(ctx.session, ctx.member, item_id, ctx.now)
    ctx.toast = ctx.label("welfare_reminder_set")
    _show_card(ctx, item_id)


@handler(needs=Need.VERIFIED)
def show_mine(ctx: Ctx) -> None:
    """Button: my claims, applications and vouchers with their status, a page at a time."""
    page = _page(ctx, MyWelfare)
    found = welfare.my_claims(ctx.session, ctx.member.id, PAGE + 1, page * PAGE)
    claims = found[:PAGE]
    keyboard = [
        [ctx.button("welfare_show_voucher", ShowVoucher(c.claim.id), title=c.item.title)]
        for c in claims
        if c.claim.status == ClaimStatus.ACTIVE
    ]
    keyboard += ctx.pager(MyWelfare, page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("welfare_back", Catalog())])
    rows = [{"title": c.item.title, "status": c.claim.status, "code": c.claim.voucher_code} for c in claims]
    ctx.show("welfare/mine", keyboard, claims=rows)


@handler(needs=Need.VERIFIED)
def show_voucher(ctx: Ctx) -> None:
    """Button: one of my vouchers again (code and QR)."""
    mine = welfare.my_voucher(ctx.session, ctx.member, ctx.pressed(ShowVoucher).claim_id)
    _send_voucher(ctx, mine.claim, mine.item, new=False)


@handler(needs=Need.VERIFIED)
def ask_cancel(ctx: Ctx) -> None:
    """Button: are you sure you want to give this voucher back?"""
    mine = welfare.my_voucher(ctx.session, ctx.member, ctx.pressed(AskCancel).claim_id)
    if mine.claim.status != ClaimStatus.ACTIVE:
        raise BadInput("welfare_not_cancellable", status=mine.claim.status)
    keyboard = [
        [ctx.button("welfare_cancel_yes", CancelClaim(mine.claim.id))],
        [ctx.button("welfare_keep", MyWelfare())],
    ]
    ctx.reply("welfare/cancel_confirm", keyboard, title=mine.item.title, points=mine.claim.points)


@handler(write=True, needs=Need.VERIFIED)
def cancel_claim(ctx: Ctx) -> None:
    """Button: give the voucher back; points (and stock) come back at once."""
    claim_id = ctx.pressed(CancelClaim).claim_id
    result = welfare.cancel_claim(ctx.session, ctx.member, claim_id, ctx.now, ctx.config.timezone)
    ctx.committed.append(lambda: ctx.services.soldout.forget(result.claim.item_id))
    ctx.show("welfare/cancelled", refunded=result.refunded, balance=result.balance)


# --- redeeming (cadres) ----------------------------------------------------------------------------


def redeem_screen(ctx: Ctx, code: str) -> None:
    """A voucher as the cadre sees it before handing out the item (from /redeem or the QR deep link)."""
    found = welfare.voucher_for_redeem(ctx.session, ctx.actor, code)
    keyboard = None
    if found.claim.status == ClaimStatus.ACTIVE:
        keyboard = [[ctx.button("welfare_redeem", Redeem(found.claim.voucher_code))]]
    ctx.reply(
        "welfare/redeem_screen",
        keyboard,
        title=found.item.title,
        name=found.member_name,
        code=found.claim.voucher_code,
        status=found.claim.status,
        redeemed_at=_local(ctx, found.claim.redeemed_at),
    )


@handler(needs=Need.CADRE)
def redeem_command(ctx: Ctx) -> None:
    """/redeem CODE: look a voucher up to hand out the item."""
    if len(ctx.args) != 1:
        raise BadInput("welfare_redeem_usage")
    redeem_screen(ctx, ctx.args[0])


@handler(write=True, needs=Need.CADRE)
def redeem_voucher(ctx: Ctx) -> None:
    """Button: the item is handed out; a second press says when and by whom."""
    result = welfare.redeem(ctx.session, ctx.actor, ctx.pressed(Redeem).code, ctx.now)
    ctx.show("welfare/redeemed", title=result.item.title, name=result.member_name, code=result.claim.voucher_code)


# --- managing items (cadres) -----------------------------------------------------------------------


@handler(needs=Need.CADRE)
def show_admin_list(ctx: Ctx) -> None:
    """/admin → Welfare: the items this cadre manages, a page at a time, and a button to create one."""
    page = _page(ctx, AdminList)
    found = welfare.list_managed(ctx.session, ctx.actor, ctx.now, True, PAGE + 1, page * PAGE)
    entries = found[:PAGE]
    keyboard = [[ctx.button("welfare_item", ManageItem(e.item.id), title=e.item.title)] for e in entries]
    keyboard += ctx.pager(AdminList, page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("welfare_new", NewItem())])
    ctx.show("welfare/admin_list", keyboard, items=[_item_view(ctx, e.item, e.phase) for e in entries])


def _show_manage(ctx: Ctx, item_id: int, page: int = 0) -> None:
    claims = welfare.item_claims(ctx.session, ctx.actor, item_id, CLAIMS_PAGE, page * CLAIMS_PAGE)
    item = claims.item
    phase = welfare.phase_of(item, ctx.now)
    keyboard = []
    if phase == Phase.DRAFT:
        keyboard.append([ctx.button("welfare_publish", PublishItem(item.id))])
    if phase in (Phase.DRAFT, Phase.UPCOMING):
        keyboard.append([ctx.button("welfare_edit", EditItem(item.id))])
    if phase in (Phase.DRAFT, Phase.UPCOMING, Phase.OPEN):
        keyboard.append([ctx.button("welfare_close", CloseItem(item.id))])
    keyboard += ctx.pager(lambda p: ItemClaims(item.id, p), page=page, has_next=len(claims.rows) == CLAIMS_PAGE)
    keyboard.append([ctx.button("welfare_back", AdminList())])
    units = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    rows = [
        {"name": r.name, "unit": units.get(r.unit_code, r.unit_code), "status": r.status, "code": r.voucher_code}
        for r in claims.rows
    ]
    ctx.show(
        "welfare/admin_card",
        keyboard,
        item=_item_view(ctx, item, phase),
        units=[units.get(u, u) for u in claims.units],
        counts=claims.counts,
        reminders=claims.reminders,
        rows=rows,
        page=page,
    )


@handler(needs=Need.CADRE)
def show_manage(ctx: Ctx) -> None:
    """Button: a managed item with its claims, stock and the actions its phase allows."""
    pressed = ctx.callback
    if isinstance(pressed, ItemClaims):
        _show_manage(ctx, pressed.item_id, pressed.page)
    else:
        _show_manage(ctx, ctx.pressed(ManageItem).item_id, 0)


@handler(write=True, needs=Need.CADRE)
def publish_item(ctx: Ctx) -> None:
    """Button: publish a draft (a lottery gets its secret seed; the hash goes on the card)."""
    item = welfare.publish(ctx.session, ctx.actor, ctx.pressed(PublishItem).item_id, ctx.now)
    ctx.toast = ctx.label("welfare_published")
    _show_manage(ctx, item.id)


@handler(write=True, needs=Need.CADRE)
def close_item(ctx: Ctx) -> None:
    """Button: end an item now (an open lottery or group-buy is then drawn or settled)."""
    item = welfare.close_early(ctx.session, ctx.actor, ctx.pressed(CloseItem).item_id, ctx.now)
    ctx.toast = ctx.label("welfare_closed")
    _show_manage(ctx, item.id)


@handler(write=True, needs=Need.CADRE)
def new_item(ctx: Ctx) -> None:
    """Button: start the step-by-step creation of an item (the draft survives restarts)."""
    forms.start_form(ctx, FORM)


@handler(write=True, needs=Need.CADRE)
def edit_item(ctx: Ctx) -> None:
    """Button: choose a field of an item that has not opened yet, then type its new value."""
    press = ctx.pressed(EditItem)
    item_id = press.item_id
    item, _units = welfare.managed_item(ctx.session, ctx.actor, item_id)
    if press.field is None:
        keyboard = [[ctx.button(f"welfare_field_{name}", EditItem(item_id, name))] for name in EDITABLE]
        keyboard.append([ctx.button("welfare_back", ManageItem(item_id))])
        ctx.show("welfare/edit_pick", keyboard, title=item.title)
        return
    name = press.field
    if name not in EDITABLE:
        raise BadInput("form_step_passed")
    ctx.set_flow(EDIT_FLOW, name, {"item_id": item_id})
    ctx.reply(f"welfare/ask_{name}", [[ctx.button("cancel", CancelFlow())]], data={"mode": item.mode})


def edit_text(ctx: Ctx, text: str) -> None:
    """The new value of the field being edited."""
    state = ctx.section_flow(EDIT_FLOW)
    item_id = state.data["item_id"]
    item, units = welfare.managed_item(ctx.session, ctx.actor, item_id)
    draft = welfare.draft_of(item, units)
    field = WELFARE_FORM.field(state.step)
    context = {**vars(draft), "opens_at": item.opens_at.isoformat(), "closes_at": item.closes_at.isoformat()}
    value = field.parse(ctx, text.strip(), context)
    if state.step in ("opens_at", "closes_at", "redeem_by") and value is not None:
        value = datetime.fromisoformat(value)
    welfare.update_item(ctx.session, ctx.actor, item_id, replace(draft, **{state.step: value}), ctx.now)
    ctx.clear_flow(EDIT_FLOW)
    ctx.reply("welfare/edited", title=item.title)
    _show_manage(ctx, item_id)


# --- the creation form -------------------------------------------------------------------------------


def _moment(ctx: Ctx, answer: str) -> datetime:
    """A stored time answer: ISO UTC text, or OPEN_NOW (the moment the item is created)."""
    return ctx.now if answer == OPEN_NOW else datetime.fromisoformat(answer)


def _open_now(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    """A button for "open it as soon as it is published" beside typing a time."""
    return [(ctx.label("welfare_open_now"), OPEN_NOW)]


# The form engine's answers with this form's messages.
_text = partial(forms.text_answer, ERRORS)
_number = partial(forms.number_answer, ERRORS)


def _photo_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> str:
    raise BadInput("welfare_photo_expected")


def _modes(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"welfare_mode_{m.value}"), m.value) for m in Mode]


def _unit_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    managed = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    everyone = [(ctx.label("welfare_all_units"), "all")] if ctx.actor.is_bureau else []
    return everyone + [(u.name(ctx.locale), u.code) for u in managed]


def _is(*modes: Mode) -> Any:
    """A field's `when`: only for these modes."""
    return lambda data: data.get("mode") in {m.value for m in modes}


def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    """The last answer is in: store the item as a draft and show it with its Publish button."""
    times = {k: _moment(ctx, data[k]) if data.get(k) else None for k in ("opens_at", "closes_at", "redeem_by")}
    ticked = data["units"]
    units = () if "all" in ticked else tuple(ticked)
    draft = ItemDraft(
        title=data["title"],
        mode=data["mode"],
        opens_at=times["opens_at"],
        closes_at=times["closes_at"],
        cost=data["cost"],
        stock=data.get("stock") or data.get("cap"),
        per_member_limit=data.get("per_member_limit") or 1,
        description=data.get("description") or "",
        pickup=data.get("pickup") or "",
        redeem_by=times["redeem_by"],
        units=units,
        threshold=data.get("threshold"),
        photo_file_id=data.get("photo"),
    )
    item = welfare.create_item(ctx.session, ctx.actor, draft, ctx.now)
    ctx.reply("welfare/created", title=item.title)
    _show_manage(ctx, item.id)


WELFARE_FORM = forms.register_form(
    Form(
        FORM,
        (
            Field("mode", choices=_modes),
            Field("title", parse=_text(welfare.TITLE_MAX)),
            Field("description", parse=_text(welfare.DESCRIPTION_MAX), optional=True),
            Field("pickup", parse=_text(welfare.PICKUP_MAX), optional=True),
            Field("photo", parse=_photo_text, optional=True, accepts_photo=True),
            Field("cost", parse=_number(0, welfare.MAX_COST)),
            Field(
                "stock",
                parse=_number(1, welfare.MAX_STOCK),
                when=_is(Mode.FIRST_COME, Mode.LOTTERY),
            ),
            Field(
                "cap",
                parse=_number(1, welfare.MAX_STOCK),
                optional=True,
                when=_is(Mode.UNIVERSAL, Mode.GROUP_BUY),
            ),
            Field(
                "per_member_limit",
                parse=_number(1, welfare.MAX_PER_MEMBER),
                when=_is(Mode.FIRST_COME),
            ),
            Field("threshold", parse=_number(1, welfare.MAX_STOCK), when=_is(Mode.GROUP_BUY)),
            Field("opens_at", parse=forms.time_answer(ERRORS, None, _moment), choices=_open_now),
            Field("closes_at", parse=forms.time_answer(ERRORS, "opens_at", _moment)),
            Field("redeem_by", parse=forms.time_answer(ERRORS, "closes_at", _moment), optional=True),
            Field("units", choices=_unit_choices, multiple=True),
        ),
        _create,
    )
)


SECTION = Section(
    "welfare",
    commands=(
        Command("welfare", show_catalog, menu_order=20),
        Command("redeem", redeem_command),
    ),
    buttons={
        Catalog: show_catalog,
        ShowItem: show_item,
        ClaimItem: claim_item,
        Withdraw: withdraw,
        Remind: remind,
        MyWelfare: show_mine,
        ShowVoucher: show_voucher,
        AskCancel: ask_cancel,
        CancelClaim: cancel_claim,
        Redeem: redeem_voucher,
        AdminList: show_admin_list,
        NewItem: new_item,
        ManageItem: show_manage,
        ItemClaims: show_manage,
        PublishItem: publish_item,
        CloseItem: close_item,
        EditItem: edit_item,
    },
    flows={FORM: forms.answer_text, EDIT_FLOW: edit_text},
    deep_links={vouchers.DEEP_LINK_PREFIX: redeem_screen},
    admin_entries=(("welfare_admin", AdminList()),),
)
