"""Durable step-by-step forms: one question at a time, answers kept in flow_state (survive restarts).

A Form is a list of Fields. Each field asks with its template `<form>/ask_<field>` and either parses
the typed answer (raising BadInput with a clear message, which keeps the user on the same question) or
offers buttons. Optional fields can be skipped with a Skip button; every question has Cancel. When the
last field is answered, the form's `finish` coroutine gets the collected data in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, Message

from buttons.forms import FormBack, FormChoice, FormDone, FormSkip
from buttons.menu import CancelFlow
from handlers.base import Ctx, Need, Section, handler
from models.clock import parse_local_datetime
from models.errors import BadInput, NotFound

Parser = Callable[[Ctx, str, dict[str, Any]], Any]
Choices = Callable[[Ctx, dict[str, Any]], list[tuple[str, str]]]
CHOICES_PER_ROW = 2
# The answers of a form in progress keep the names of the questions answered so far under this key.
PATH = "_path"


@dataclass(frozen=True)
class Field:
    """One question of a form."""

    name: str
    parse: Parser | None = None
    choices: Choices | None = None
    optional: bool = False
    accepts_photo: bool = False
    when: Callable[[dict[str, Any]], bool] = field(default=lambda _data: True)
    # Several of the choices may be ticked (the answer is a list), confirmed with a Done button.
    multiple: bool = False


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

    def remaining(self, data: dict[str, Any], after: str) -> int:
        """How many more questions apply after this one, given the answers so far (for "question 3 of 9")."""
        count, current = 0, self.next_field(data, after)
        while current is not None:
            count += 1
            current = self.next_field(data, current.name)
        return count

    def field(self, name: str) -> Field:
        """The field with this name; NotFound for a stale step."""
        found = next((f for f in self.fields if f.name == name), None)
        if found is None:
            raise NotFound()
        return found


FORMS: dict[str, Form] = {}


# --- answers every form may use: each names the prefix of its error messages (errors/<prefix>_text_empty, ...) ---


def text_answer(errors: str, limit: int) -> Parser:
    """Free text up to `limit` characters."""

    def parse(_ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
        if not text:
            raise BadInput(f"{errors}_text_empty")
        if len(text) > limit:
            raise BadInput(f"{errors}_text_too_long", max=limit)
        return text

    return parse


def number_answer(errors: str, low: int, high: int) -> Parser:
    """A whole number in [low, high]."""

    def parse(_ctx: Ctx, text: str, _data: dict[str, Any]) -> int:
        # ASCII digits only: "²".isdigit() is True yet int("²") fails; nine digits keep int() happy.
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise BadInput(f"{errors}_number_range", low=low, high=high)
        return int(text)

    return parse


def time_answer(errors: str, after: str | None, stored: Callable[[Ctx, str], datetime]) -> Parser:
    """A local 'YYYY-MM-DD HH:MM' in the future (and after the answer named `after`, read back with `stored`),
    kept as ISO UTC text."""

    def parse(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
        moment = parse_local_datetime(text, ctx.config.timezone)
        if moment <= ctx.now:
            raise BadInput(f"{errors}_time_past")
        if after and data.get(after) and moment <= stored(ctx, data[after]):
            raise BadInput(f"{errors}_time_after_{after}")
        return moment.isoformat()

    return parse


def register_form(form: Form) -> Form:
    """Make a form reachable by its name (flows and buttons refer to it by name)."""
    FORMS[form.name] = form
    return form


def _keyboard(ctx: Ctx, form: Form, current: Field, data: dict[str, Any]) -> list[list[InlineKeyboardButton]]:
    rows: list[list[InlineKeyboardButton]] = []
    if current.choices is not None:
        ticked = set(data.get(current.name) or ()) if current.multiple else set()
        buttons = [
            InlineKeyboardButton(
                ctx.label("form_ticked", label=label) if value in ticked else label,
                callback_data=FormChoice(form.name, current.name, value).pack(),
            )
            for label, value in current.choices(ctx, data)
        ]
        rows = [buttons[i : i + CHOICES_PER_ROW] for i in range(0, len(buttons), CHOICES_PER_ROW)]
        if current.multiple and ticked:
            rows.append([ctx.button("form_done", FormDone(form.name, current.name))])
    last = [ctx.button("cancel", CancelFlow())]
    if current.optional:
        last.insert(0, ctx.button("skip", FormSkip(form.name, current.name)))
    if data.get(PATH):
        last.insert(0, ctx.button("back", FormBack(form.name, current.name)))
    return [*rows, last]


def ask(ctx: Ctx, form: Form, data: dict[str, Any], after: str | None = None) -> None:
    """Store the answers so far and ask the next question, or finish the form."""
    current = form.next_field(data, after)
    if after is not None:
        # The questions answered so far, in order: what the Back button walks back through.
        data = {**data, PATH: [*data.get(PATH, []), after]}
    if current is None:
        ctx.clear_flow(form.name)
        form.finish(ctx, {k: v for k, v in data.items() if k != PATH})
        return
    ctx.set_flow(form.name, current.name, data)
    _ask(ctx, form, current, data, edit=False)


def _ask(ctx: Ctx, form: Form, current: Field, data: dict[str, Any], *, edit: bool) -> None:
    """The question with "step 3 of 12" above it (counting the questions that apply to the answers so far)."""
    position = len(data.get(PATH, [])) + 1
    total = position + form.remaining(data, current.name)
    text = "\n".join(
        (ctx.t("forms/progress", step=position, steps=total), ctx.t(f"{form.name}/ask_{current.name}", data=data))
    )
    ctx.say(text, _keyboard(ctx, form, current, data), edit=edit)


def start_form(ctx: Ctx, name: str, data: dict[str, Any] | None = None) -> None:
    """Begin a form (replacing any flow the user was in)."""
    ask(ctx, FORMS[name], dict(data or {}))


def answer_text(ctx: Ctx, text: str) -> None:
    """A typed answer to the current question (the flow dispatcher calls this)."""
    state = ctx.flow()
    form = FORMS[state.name]
    current = form.field(state.step)
    if current.parse is None:
        raise BadInput("use_buttons")
    value = current.parse(ctx, text.strip(), state.data)
    ask(ctx, form, {**state.data, current.name: value}, after=current.name)


def answer_photo(ctx: Ctx, file_id: str) -> None:
    """A photo sent as the answer to a question that accepts one."""
    state = ctx.flow()
    form = FORMS[state.name]
    current = form.field(state.step)
    if not current.accepts_photo:
        raise BadInput("photo_not_expected")
    ask(ctx, form, {**state.data, current.name: file_id}, after=current.name)


def _current(ctx: Ctx) -> tuple[Form, Field, dict[str, Any]]:
    """The form and question a button belongs to; stale buttons (another step) are refused."""
    pressed = ctx.callback
    if not isinstance(pressed, FormChoice | FormSkip | FormBack | FormDone) or pressed.form not in FORMS:
        raise _stale()
    form_name, field_name = pressed.form, pressed.field
    state = ctx.section_flow(form_name)
    if state is None or state.name != form_name or state.step != field_name:
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
    value = ctx.pressed(FormChoice).value
    allowed = {v for _label, v in (current.choices(ctx, data) if current.choices else [])}
    if value not in allowed:
        # A value this user was never offered (a forged button, or one no longer in their scope).
        raise BadInput("form_choice_not_offered")
    if current.multiple:
        # Tick or untick, and show the same question again with the new marks.
        ticked = list(data.get(current.name) or ())
        ticked = [v for v in ticked if v != value] if value in ticked else [*ticked, value]
        data = {**data, current.name: ticked}
        ctx.set_flow(form.name, current.name, data)
        _ask(ctx, form, current, data, edit=True)
        return
    ask(ctx, form, {**data, current.name: value}, after=current.name)


@handler(write=True, needs=Need.VERIFIED)
def confirm_choices(ctx: Ctx) -> None:
    """Button: the ticked answers of a question that takes several are complete."""
    form, current, data = _current(ctx)
    if not current.multiple or not data.get(current.name):
        raise _stale()
    ask(ctx, form, data, after=current.name)


@handler(write=True, needs=Need.VERIFIED)
def go_back(ctx: Ctx) -> None:
    """Button: ask the previous question again (its earlier answer is forgotten)."""
    form, _current_field, data = _current(ctx)
    path = list(data.get(PATH, []))
    if not path:
        raise _stale()
    previous = path.pop()
    data = {k: v for k, v in data.items() if k not in (previous, PATH)} | {PATH: path}
    field = form.field(previous)
    ctx.set_flow(form.name, field.name, data)
    _ask(ctx, form, field, data, edit=True)


@handler(write=True, needs=Need.VERIFIED)
def skip_answer(ctx: Ctx) -> None:
    """Button: leave an optional answer empty."""
    form, current, data = _current(ctx)
    if not current.optional:
        raise _stale()
    ask(ctx, form, {**data, current.name: None}, after=current.name)


def answer_media(ctx: Ctx, message: Message) -> None:
    """A non-text message in a form (handlers/menu.py on_media): a photo answers a question that takes one."""
    state = ctx.flow()
    form = FORMS[state.name]
    if message.photo:
        answer_photo(ctx, message.photo[-1].file_id)
        return
    raise BadInput("photo_expected" if form.field(state.step).accepts_photo else "text_expected")


SECTION = Section(
    "forms",
    buttons={
        FormChoice: choose_answer,
        FormSkip: skip_answer,
        FormBack: go_back,
        FormDone: confirm_choices,
    },
)
