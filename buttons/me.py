"""Buttons of Me (我的): language, ranking opt-out, export, delete."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class MeHome(Button, prefix="me:home"):
    pass


@dataclass(frozen=True)
class SetLanguage(Button, prefix="me:lang"):
    language: str


@dataclass(frozen=True)
class ToggleRanking(Button, prefix="me:rank"):
    pass


@dataclass(frozen=True)
class ExportData(Button, prefix="me:export"):
    pass


@dataclass(frozen=True)
class DeleteAccount(Button, prefix="me:delete"):
    pass


@dataclass(frozen=True)
class ConfirmDelete(Button, prefix="me:delete_yes"):
    pass


@dataclass(frozen=True)
class ToggleDigest(Button, prefix="me:digest"):
    """Cadres: the weekly Insight digest on or off."""
