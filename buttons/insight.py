"""Buttons of Insight (工会数据看板): an area for a period and a unit, the unit picker, the CSV."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class StatsView(Button, prefix="ins:view"):
    """One area (reach, interaction, stickiness, efficiency) for a period; unit None: the whole scope."""

    area: str
    period: str
    unit: str | None = None


@dataclass(frozen=True)
class StatsUnits(Button, prefix="ins:units"):
    """The unit picker, returning to this area and period."""

    area: str
    period: str


@dataclass(frozen=True)
class StatsCsv(Button, prefix="ins:csv"):
    """Every figure of the period, per unit of the scope (or of one unit), as a CSV file."""

    period: str
    unit: str | None = None


@dataclass(frozen=True)
class StatsChart(Button, prefix="ins:chart"):
    """The chart image of one area for a period (unit None: the whole scope)."""

    area: str
    period: str
    unit: str | None = None
