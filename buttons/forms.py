"""Buttons of step-by-step forms: pick an offered answer, skip an optional one."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class FormChoice(Button, prefix="form:choice"):
    form: str
    field: str
    value: str


@dataclass(frozen=True)
class FormSkip(Button, prefix="form:skip"):
    form: str
    field: str


@dataclass(frozen=True)
class FormBack(Button, prefix="form:back"):
    """Go back to the question before this one."""

    form: str
    field: str


@dataclass(frozen=True)
class FormDone(Button, prefix="form:done"):
    """Confirm the answers ticked on a question that takes several."""

    form: str
    field: str
