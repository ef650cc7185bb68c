"""Buttons of points (积分): history pages, how to earn, the ranking, back to the balance."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class PointsHome(Button, prefix="pts:home"):
    pass


@dataclass(frozen=True)
class PointsHistory(Button, prefix="pts:hist"):
    page: int


@dataclass(frozen=True)
class PointsEarn(Button, prefix="pts:earn"):
    pass


@dataclass(frozen=True)
class PointsRanking(Button, prefix="pts:rank"):
    pass
