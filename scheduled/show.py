"""Weekly top posts of the show (我型我秀): every Monday morning, to members who asked for them, through the outbox."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from sqlmodel import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from buttons.show import OpenPost
from config import Config
from messages import pick_locale
from models import show
from models.clock import local_date
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

TOP_SIZE = 5
SEND_AT = time(10, 0)
MONDAY = 0


def _queue(services: Services, session: Session, now: datetime) -> int:
    """One notice per subscriber in their language (a dedupe key per ISO week: a second run sends nothing)."""
    top = show.week_top(session, now - timedelta(days=7), TOP_SIZE)
    if not top:
        return 0
    year, week, _ = local_date(services.config.timezone, now).isocalendar()
    sent = 0
    for member in show.digest_readers(session):
        locale = pick_locale(member.language)
        text = services.renderer.render(locale, "show/weekly", posts=top)
        rows = [
            [
                InlineKeyboardButton(
                    services.renderer.label(locale, "show_open", title=p.title),
                    callback_data=OpenPost(p.post_id).pack(),
                )
            ]
            for p in top
        ]
        keyboard = InlineKeyboardMarkup(rows).to_dict()
        key = f"show_weekly:{year}-{week}:{member.id}"
        if notify(
            session,
            member.telegram_id,
            text,
            now=now,
            keyboard=keyboard,
            dedupe_key=key,
            member_id=member.id,
            personal=False,
        ):
            sent += 1
    return sent


async def send_top_posts(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: queue this week's top posts for every subscriber; 'sent:<n>'."""
    now = now or services.clock.now()
    sent = await services.db.write(lambda session: _queue(services, session, now))
    log.info("show: weekly top posts queued for %d members", sent)
    return f"sent:{sent}"


def next_monday(config: Config, after: datetime) -> datetime:
    """The next Monday at SEND_AT, local time."""
    local = after.astimezone(config.timezone)
    days = (MONDAY - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), SEND_AT, config.timezone)
    if candidate <= local:
        candidate += timedelta(days=7)
    return candidate


TASKS = (TaskSpec("show_weekly", send_top_posts, next_monday),)
