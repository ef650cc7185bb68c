"""Buttons of the home menu: open a section, go home, leave a flow."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class OpenSection(Button, prefix="menu:open"):
    command: str


@dataclass(frozen=True)
class Home(Button, prefix="menu:home"):
    pass


@dataclass(frozen=True)
class CancelFlow(Button, prefix="flow:cancel"):
    pass
