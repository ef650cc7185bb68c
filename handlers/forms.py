"""Durable step-by-step forms: one question at a time, answers kept in flow_state (survive restarts).

A Form is a list of Fields. Each field asks with its template `<form>/ask_<field>` and either parses
the typed answer (raising BadInput with a clear message, which keeps the user on the same question) or
offers buttons. Optional fields can be skipped with a Skip button; every question has Cancel. When the
last field is answered, the form's `finish` coroutine gets the collected data in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import InlineKeyboardButton
from telegram.ext import Application, MessageHandler, filters

from handlers.base import Ctx, Need, handler
from handlers.callback_data import Cb, pack
from models import flows
from models.errors import BadInput, NotFound

Parser = Callable[[Ctx, str, dict[str, Any]], Any]
Choices = Callable[[Ctx, dict[str, Any]], list[tuple[str, str]]]
CHOICES_PER_ROW = 2


@dataclass(frozen=True)
class Field:
    """One question of a form."""

    name: str
    parse: Parser | None = None
    choices: Choices | None = None
    optional: bool = False
    accepts_photo: bool = False
    when: Callable[[dict[str, Any]], bool] = field(default=lambda _data: True)


@dataclass(frozen=True)
class Form:
    """A named sequence of fields and what to do with the answers."""

    name: str
    fields: tuple[Field, ...]
    finish: Callable[[Ctx, dict[str, Any]], None]

    def next_field(self, data: dict[str, Any], after: str | None) -> Field | None:
        """The next field that applies, after the named one (or the first)."""
        names = [f.name for f in self.fields]
        start = names.index(after) + 1 if after is not None else 0
        return next((f for f in self.fields[start:] if f.when(data)), None)

    def field(self, name: str) -> Field:
        """The field with this name; NotFound for a stale step."""
        found = next((f for f in self.fields if f.name == name), None)
        if found is None:
            raise NotFound()
        return found


FORMS: dict[str, Form] = {}


def register_form(form: Form) -> Form:
    """Make a form reachable by its name (flows and buttons refer to it by name)."""
    FORMS[form.name] = form
    return form


def _keyboard(ctx: Ctx, form: Form, current: Field, data: dict[str, Any]) -> list[list[InlineKeyboardButton]]:
    rows: list[list[InlineKeyboardButton]] = []
    if current.choices is not None:
        buttons = [
            InlineKeyboardButton(label, callback_data=pack(Cb.FORM_CHOICE, form.name, current.name, value))
            for label, value in current.choices(ctx, data)
        ]
        rows = [buttons[i : i + CHOICES_PER_ROW] for i in range(0, len(buttons), CHOICES_PER_ROW)]
    last = [ctx.button("cancel", Cb.CANCEL_FLOW)]
    if current.optional:
        last.insert(0, ctx.button("skip", Cb.FORM_SKIP, form.name, current.name))
    return [*rows, last]


def ask(ctx: Ctx, form: Form, data: dict[str, Any], after: str | None = None) -> None:
    """Store the answers so far and ask the next question, or finish the form."""
    current = form.next_field(data, after)
    if current is None:
        flows.clear_flow(ctx.session, ctx.actor.telegram_id)
        form.finish(ctx, data)
        return
    flows.set_flow(ctx.session, ctx.actor.telegram_id, form.name, current.name, data)
    ctx.reply(f"{form.name}/ask_{current.name}", _keyboard(ctx, form, current, data), data=data)


def start_form(ctx: Ctx, name: str, data: dict[str, Any] | None = None) -> None:
    """Begin a form (replacing any flow the user was in)."""
    ask(ctx, FORMS[name], dict(data or {}))


def answer_text(ctx: Ctx, text: str) -> None:
    """A typed answer to the current question (the flow dispatcher calls this)."""
    state = flows.get_flow(ctx.session, ctx.actor.telegram_id)
    form = FORMS[state.name]
    current = form.field(state.step)
    if current.parse is None:
        raise BadInput("use_buttons")
    value = current.parse(ctx, text.strip(), state.data)
    ask(ctx, form, {**state.data, current.name: value}, after=current.name)


def answer_photo(ctx: Ctx, file_id: str) -> None:
    """A photo sent as the answer to a question that accepts one."""
    state = flows.get_flow(ctx.session, ctx.actor.telegram_id)
    form = FORMS[state.name]
    current = form.field(state.step)
    if not current.accepts_photo:
        raise BadInput("photo_not_expected")
    ask(ctx, form, {**state.data, current.name: file_id}, after=current.name)


def _current(ctx: Ctx) -> tuple[Form, Field, dict[str, Any]]:
    """The form and question a button belongs to; stale buttons (another step) are refused."""
    form_name, field_name = ctx.callback.str_arg(0), ctx.callback.str_arg(1)
    state = flows.get_flow(ctx.session, ctx.actor.telegram_id)
    if state is None or state.name != form_name or state.step != field_name or form_name not in FORMS:
        raise _stale()
    form = FORMS[form_name]
    return form, form.field(field_name), state.data


def _stale() -> BadInput:
    """The error for a button of a question that is no longer being asked."""
    return BadInput("form_step_passed")


@handler(write=True, needs=Need.VERIFIED)
def choose_answer(ctx: Ctx) -> None:
    """Button: pick one of the offered answers."""
    form, current, data = _current(ctx)
    value = ctx.callback.str_arg(2)
    allowed = {v for _label, v in (current.choices(ctx, data) if current.choices else [])}
    if value not in allowed:
        raise _stale()
    ask(ctx, form, {**data, current.name: value}, after=current.name)


@handler(write=True, needs=Need.VERIFIED)
def skip_answer(ctx: Ctx) -> None:
    """Button: leave an optional answer empty."""
    form, current, data = _current(ctx)
    if not current.optional:
        raise _stale()
    ask(ctx, form, {**data, current.name: None}, after=current.name)


@handler(write=True, needs=Need.ANYONE)
def photo_answer(ctx: Ctx) -> None:
    """A photo: the answer to a form question that accepts one, otherwise a hint."""
    state = flows.get_flow(ctx.session, ctx.actor.telegram_id)
    if state is None or state.name not in FORMS:
        ctx.reply("menu/hint", registered=ctx.actor.verified)
        return
    answer_photo(ctx, ctx.update.effective_message.photo[-1].file_id)


BUTTONS = {
    Cb.FORM_CHOICE: choose_answer,
    Cb.FORM_SKIP: skip_answer,
}


def register(app: Application) -> None:
    """Buttons of every form, and photos sent as answers."""
    app.add_handler(MessageHandler(filters.PHOTO & filters.ChatType.PRIVATE, photo_answer))
