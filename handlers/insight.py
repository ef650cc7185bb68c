"""Insight (工会数据看板): /stats — reach, interaction, stickiness and efficiency for a cadre's units.

A unit cadre sees their own units; a bureau cadre and an admin every unit, with a unit picker. Every count of
members goes through models.insight.shown, so a group of fewer than 5 members is "<5" on the screen and in the
CSV alike.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from sqlmodel import Session
from telegram import InlineKeyboardButton, WebAppInfo

from buttons.insight import StatsChart, StatsCsv, StatsUnits, StatsView
from charts import bar_chart
from config import Config
from handlers.base import Command, Ctx, Need, Outgoing, Section, handler
from messages import Renderer
from models import insight
from models.errors import BadInput, NotFound
from models.insight import AREAS, PERIODS, shown
from models.members import Actor

DEFAULT_AREA, DEFAULT_PERIOD = "reach", "month"
UNIT_COLUMNS = 3


def scope_units(actor: Actor, config: Config, unit: str | None) -> list[str]:
    """The units a screen covers: one chosen unit (which this cadre must serve), or every unit they serve."""
    actor.require_cadre()
    if unit is not None:
        if config.unit(unit) is None:
            raise NotFound("unit_unknown")
        actor.require_unit(unit)
        return [unit]
    return [u.code for u in config.units if actor.can_manage(u.code)]


def _scope(ctx: Ctx, unit: str | None) -> list[str]:
    return scope_units(ctx.actor, ctx.config, unit)


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.0f}%"


def _ratio(part: int, whole: int) -> str | None:
    return _pct(insight.share(part, whole))


def figures(
    session: Session, config: Config, locale: str, today: date, area: str, units: list[str], period: insight.Period
) -> dict[str, Any]:
    """What an area shows (the chat's template, the Mini App's page), every member count already through shown()."""
    tz, s = config.timezone, session
    if area == "reach":
        rows = insight.reach(s, units, today)
        b = insight.broadcast_reach(s, units, period, today, tz)
        broadcasts = {
            "recipients": shown(b.recipients),
            "delivered": _ratio(b.delivered, b.recipients),
            "blocked": shown(b.blocked),
            "acknowledged": _ratio(b.acknowledged, b.delivered),
            "young_delivered": _ratio(b.young_delivered, b.young_recipients),
            "young_acknowledged": _ratio(b.young_acknowledged, b.young_delivered),
        }
        return {
            "broadcasts": broadcasts,
            "rows": [
                {
                    "unit": _unit_name(config, r.unit, locale) if r.unit else None,
                    "roster": shown(r.roster),
                    "verified": shown(r.verified),
                    "share": _pct(r.registered_share),
                    "young_share": _pct(r.young_share),
                }
                for r in rows
            ],
        }
    if area == "interaction":
        i = insight.interaction(s, units, period, tz)
        return {
            "members": shown(i.members),
            "weekly_active": shown(i.weekly_active),
            "active_share": _ratio(i.weekly_active, i.members),
            "weeks": [(monday, shown(n)) for monday, n in i.weeks],
            "sections": sorted(((name, shown(n)) for name, n in i.section_days.items()), key=lambda x: x[0]),
            "actions": [(name, shown(n)) for name, n in i.actions.items()],
            "feedback_messages": i.feedback_messages,
            "feedback_reply_hours": None if i.feedback_reply_hours is None else f"{i.feedback_reply_hours:.1f}",
        }
    if area == "stickiness":
        st = insight.stickiness(s, units, today, tz)
        return {
            "active": shown(st.active),
            "sticky": shown(st.sticky),
            "sticky_share": _ratio(st.sticky, st.active),
            "cohorts": [
                {"month": c.month, "joined": shown(c.joined), "retained": [shown(n) for n in c.retained]}
                for c in st.cohorts
            ],
        }
    e = insight.efficiency(s, units, period, tz)
    return {
        "items": e.welfare_items,
        "places": e.welfare_places,
        "claimed": e.welfare_claimed,
        "claim_rate": _pct(e.welfare_claimed / e.welfare_places) if e.welfare_places else None,
        "approvals": e.approvals,
        "approval_hours": None if e.approval_hours is None else f"{e.approval_hours:.1f}",
        "extra": [(name, shown(done), shown(total), _ratio(done, total)) for name, (done, total) in e.extra.items()],
    }


def _unit_name(config: Config, code: str, locale: str) -> str:
    unit = config.unit(code)
    return unit.name(locale) if unit is not None else code


def _keyboard(ctx: Ctx, area: str, period: str, unit: str | None) -> list[list[Any]]:
    rows = [
        [ctx.button(f"insight_area_{a}", StatsView(a, period, unit), chosen=a == area) for a in AREAS],
        [ctx.button(f"insight_period_{p}", StatsView(area, p, unit), chosen=p == period) for p in PERIODS],
    ]
    rows.append(
        [ctx.button("insight_chart", StatsChart(area, period, unit)), ctx.button("insight_csv", StatsCsv(period, unit))]
    )
    if len(_scope(ctx, None)) > 1:
        picking = [ctx.button("insight_units", StatsUnits(area, period))]
        if unit is not None:
            picking.append(ctx.button("insight_all_units", StatsView(area, period)))
        rows.append(picking)
    url = ctx.config.insight.webapp_url
    if url:
        rows.append([InlineKeyboardButton(ctx.label("insight_webapp_open"), web_app=WebAppInfo(url))])
    return rows


@handler(needs=Need.CADRE)
def show_stats(ctx: Ctx) -> None:
    """/stats and its buttons: one area of the figures for a period, for the scope or one unit of it."""
    view = ctx.callback if isinstance(ctx.callback, StatsView) else StatsView(DEFAULT_AREA, DEFAULT_PERIOD)
    if view.area not in AREAS or view.period not in PERIODS:
        raise BadInput("bad_input")
    units = _scope(ctx, view.unit)
    period = insight.period_of(view.period, ctx.today)
    chosen = ctx.config.unit(view.unit) if view.unit else None
    ctx.show(
        f"insight/{view.area}",
        _keyboard(ctx, view.area, view.period, view.unit),
        period=view.period,
        start=period.start,
        until=ctx.today,
        unit=chosen.name(ctx.locale) if chosen else None,
        units=len(units),
        **figures(ctx.session, ctx.config, ctx.locale, ctx.today, view.area, units, period),
    )


def chart_bars(
    session: Session,
    config: Config,
    renderer: Renderer,
    locale: str,
    today: date,
    area: str,
    units: list[str],
    period: insight.Period,
) -> tuple[list[str], list[float], str]:
    """What an area's chart shows: bar labels, values and the unit ("%" or ""). A group of 1 to 4 members is never a
    bar: it is left out (shares) or drawn as 0 with "<5" in its label (counts)."""
    tz = config.timezone
    if area == "reach":
        rows = sorted(
            (r for r in insight.reach(session, units, today)[:-1] if r.registered_share is not None),
            key=lambda r: -(r.registered_share or 0),
        )
        return [_unit_name(config, r.unit, locale) for r in rows], [round(r.registered_share * 100) for r in rows], "%"
    if area == "interaction":
        weeks = insight.interaction(session, units, period, tz).weeks
        labels = [monday.strftime("%m-%d") + (" (<5)" if 0 < n < insight.SMALL_GROUP else "") for monday, n in weeks]
        return labels, [n if not 0 < n < insight.SMALL_GROUP else 0 for _, n in weeks], ""
    if area == "stickiness":
        cohorts = insight.stickiness(session, units, today, tz).cohorts
        kept = [(c, c.retained[0]) for c in cohorts if c.retained[0] is not None]
        shares = [(c.month.strftime("%Y-%m"), insight.share(n or 0, c.joined)) for c, n in kept]
        return [m for m, v in shares if v is not None], [round(v * 100) for _, v in shares if v is not None], "%"
    e = insight.efficiency(session, units, period, tz)
    ratios = {"welfare_claims": (e.welfare_claimed, e.welfare_places), **e.extra}
    names = renderer.env.get_template(f"{locale}/insight/_names.j2").module
    shown_ratios = [(name, insight.share(done, total)) for name, (done, total) in ratios.items()]
    labels = [str(names.ratio_name(name)) for name, value in shown_ratios if value is not None]
    return labels, [round(value * 100) for _, value in shown_ratios if value is not None], "%"


@handler(needs=Need.CADRE)
def send_chart(ctx: Ctx) -> None:
    """Button: the area's chart as an image (matplotlib, Chinese labels), the same figures as the screen."""
    pressed = ctx.pressed(StatsChart)
    if pressed.area not in AREAS or pressed.period not in PERIODS:
        raise BadInput("bad_input")
    units = _scope(ctx, pressed.unit)
    period = insight.period_of(pressed.period, ctx.today)
    renderer = ctx.services.renderer
    labels, values, unit = chart_bars(
        ctx.session, ctx.config, renderer, ctx.locale, ctx.today, pressed.area, units, period
    )
    title = ctx.label(f"insight_chart_{pressed.area}")
    chosen = ctx.config.unit(pressed.unit) if pressed.unit else None
    caption = ctx.t(
        "insight/chart_caption",
        area=pressed.area,
        period=pressed.period,
        start=period.start,
        until=ctx.today,
        unit=chosen.name(ctx.locale) if chosen else None,
        units=len(units),
        empty=not values,
    )
    ctx.replies.append(Outgoing(ctx.chat_id, caption, photo=bar_chart(title, labels, values, unit=unit)))


@handler(needs=Need.CADRE)
def pick_unit(ctx: Ctx) -> None:
    """Button: the units this cadre serves, to look at one of them (or all of them again)."""
    pressed = ctx.pressed(StatsUnits)
    if pressed.area not in AREAS or pressed.period not in PERIODS:
        raise BadInput("bad_input")
    units = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    buttons = [
        ctx.button("insight_unit", StatsView(pressed.area, pressed.period, u.code), name=u.name(ctx.locale))
        for u in units
    ]
    rows = [buttons[i : i + UNIT_COLUMNS] for i in range(0, len(buttons), UNIT_COLUMNS)]
    rows.append([ctx.button("insight_all_units", StatsView(pressed.area, pressed.period))])
    ctx.show("insight/pick_unit", rows)


@handler(needs=Need.CADRE)
def export_csv(ctx: Ctx) -> None:
    """Button: the period's figures per unit as a CSV file (UTF-8 with BOM, so Excel opens it), "<5" included."""
    pressed = ctx.pressed(StatsCsv)
    if pressed.period not in PERIODS:
        raise BadInput("bad_input")
    units = _scope(ctx, pressed.unit)
    period = insight.period_of(pressed.period, ctx.today)
    rows = [_csv_row(ctx, unit, period) for unit in units]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([ctx.label(f"insight_csv_{column}") for column in CSV_COLUMNS])
    writer.writerows([[row[column] for column in CSV_COLUMNS] for row in rows])
    filename = f"stats-{pressed.period}-{period.start.isoformat()}-{ctx.today.isoformat()}.csv"
    ctx.send_document(out.getvalue().encode("utf-8-sig"), filename, "insight/csv_caption", period=pressed.period)


CSV_COLUMNS = (
    "unit",
    "roster",
    "verified",
    "registered_share",
    "young_roster",
    "young_verified",
    "young_share",
    "weekly_active",
    "active_4_weeks",
    "sticky_4_weeks",
    "welfare_places",
    "welfare_claimed",
    "approvals",
    "approval_hours",
)


def _csv_row(ctx: Ctx, unit: str, period: insight.Period) -> dict[str, str]:
    """One unit's figures for the CSV, with the same hiding as the screens."""
    tz, s = ctx.config.timezone, ctx.session
    r = insight.reach(s, [unit], ctx.today)[0]
    i = insight.interaction(s, [unit], period, tz)
    st = insight.stickiness(s, [unit], ctx.today, tz)
    e = insight.efficiency(s, [unit], period, tz)
    return {
        "unit": ctx.config.unit(unit).name(ctx.locale),
        "roster": shown(r.roster),
        "verified": shown(r.verified),
        "registered_share": _pct(r.registered_share) or "",
        "young_roster": shown(r.young_roster),
        "young_verified": shown(r.young_verified),
        "young_share": _pct(r.young_share) or "",
        "weekly_active": shown(i.weekly_active),
        "active_4_weeks": shown(st.active),
        "sticky_4_weeks": shown(st.sticky),
        "welfare_places": str(e.welfare_places),
        "welfare_claimed": str(e.welfare_claimed),
        "approvals": str(e.approvals),
        "approval_hours": "" if e.approval_hours is None else f"{e.approval_hours:.1f}",
    }


SECTION = Section(
    "insight",
    commands=(Command("stats", show_stats, menu_order=110),),
    buttons={StatsView: show_stats, StatsUnits: pick_unit, StatsCsv: export_csv, StatsChart: send_chart},
)
