"""The satisfaction round (评家): at the start of each period (config [feedback]) every member who has not rated
yet is asked, through the outbox, with five score buttons.

Members are asked in batches, one write transaction each; every notice has a dedupe key (period and member), so
a re-run after a crash never asks anyone twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sqlmodel import Session

from buttons.feedback import RateUnion
from config import Config
from models import feedback
from models.clock import local_date
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

BATCH = 500


def pack(period_code: int, score: int) -> str:
    """The callback data of a score button."""
    return RateUnion(period_code, score).pack()


KIND_ASK = "satisfaction_ask"


def ask_moment(config: Config, period: date) -> datetime:
    """When (UTC) the round of the period starting on `period` is asked: the configured day and local time."""
    settings = config.feedback
    local = datetime.combine(period.replace(day=settings.satisfaction_ask_day), settings.satisfaction_ask_time)
    return local.replace(tzinfo=config.timezone).astimezone(UTC)


def next_round(config: Config, after: datetime) -> datetime:
    """The next ask moment after `after`: this period's if still ahead, otherwise the next period's."""
    every = config.feedback.satisfaction_every_months
    period = feedback.period_of(local_date(config.timezone, after), every)
    moment = ask_moment(config, period)
    return moment if moment > after else ask_moment(config, feedback.next_period(period, every))


async def ask_round(services: Services, now: datetime | None = None) -> str:
    """Ask every member who has not rated in the current period (batches, deduplicated); 'ok'."""
    now = now or services.clock.now()
    config = services.config
    period = feedback.period_of(local_date(config.timezone, now), config.feedback.satisfaction_every_months)
    code = period.year * 10000 + period.month * 100 + period.day
    renderer = services.renderer
    after, asked = 0, 0
    while True:

        def batch(session: Session, after: int = after) -> tuple[int | None, int]:
            """Ask the next members after `after` (in the database's thread)."""
            raters = feedback.raters_to_ask(session, period, after, BATCH)
            count = 0
            for rater in raters:
                unit = config.unit(rater.unit_code)
                text = renderer.render(
                    rater.language, "feedback/ask_rating", unit=unit.name(rater.language) if unit else ""
                )
                row = [
                    {"text": renderer.label(rater.language, f"feedback_score_{s}"), "callback_data": pack(code, s)}
                    for s in feedback.SCORES
                ]
                count += notify(
                    session,
                    rater.telegram_id,
                    text,
                    now=now,
                    kind=KIND_ASK,
                    keyboard={"inline_keyboard": [row]},
                    dedupe_key=f"satisfaction:{period.isoformat()}:{rater.member_id}",
                    member_id=rater.member_id,
                    personal=False,
                )
            return (raters[-1].member_id if raters else None), count

        last, count = await services.db.write(batch)
        asked += count
        if last is None:
            break
        after = last
    if asked:
        log.info("satisfaction round %s: %d members asked", period.isoformat(), asked)
    return "ok"


TASKS = (TaskSpec("satisfaction_round", ask_round, next_round),)
