"""Buttons of joining (入会): pick a unit, withdraw a request, cadres' approve / decline and the request list."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class PickUnit(Button, prefix="reg:unit"):
    unit: str


@dataclass(frozen=True)
class WithdrawRequest(Button, prefix="reg:withdraw"):
    pass


@dataclass(frozen=True)
class ApproveMember(Button, prefix="reg:approve"):
    member_id: int


@dataclass(frozen=True)
class DeclineMember(Button, prefix="reg:decline"):
    member_id: int


@dataclass(frozen=True)
class PendingPage(Button, prefix="reg:pending"):
    page: int
