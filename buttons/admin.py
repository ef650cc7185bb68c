"""Buttons of administration (管理): pages of the audit log and of the invite links."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class AuditPage(Button, prefix="adm:audit"):
    page: int


@dataclass(frozen=True)
class InvitePage(Button, prefix="adm:invites"):
    page: int
