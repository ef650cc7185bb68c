"""Surveys' timed work at every scheduler tick: the invitation when a survey opens, the reminder before it closes,
and mixing the last anonymous ballots of a closed survey.

Each survey is handled in its own write transaction: the invitation (or reminder) mark is claimed by a conditional
UPDATE and the notices are queued in the outbox in that same transaction, with a dedupe key each, so a restart
neither loses nor doubles them. An anonymous survey's reminder goes to the whole audience ("if you have already
answered, thank you"): choosing only those who have not answered would write down who has, in the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from buttons.surveys import OpenSurvey
from config import Config
from messages import pick_locale
from models import surveys
from models.clock import local_date
from models.surveys import Survey
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

KIND_INVITE = "survey_invite"
KIND_REMIND = "survey_remind"


def _view(survey: Survey, config: Config) -> dict[str, object]:
    return {
        "title": survey.title,
        "intro": survey.intro,
        "questions": len(survey.questions),
        "anonymous": survey.anonymous,
        "points": survey.points,
        "closes_at": survey.closes_at.astimezone(config.timezone),
    }


def _tell(services: Services, session: Session, survey: Survey, kind: str, now: datetime) -> int:
    """Queue the invitation or the reminder to the audience, each in its reader's language, with a Start button."""
    config, renderer = services.config, services.renderer
    reminder = kind == KIND_REMIND
    column = "reminded_at" if reminder else "invited_at"
    if not surveys.claim_mark(session, survey.id, column, now):
        return 0
    today = local_date(config.timezone, now)
    missing_only = reminder and not survey.anonymous
    view = _view(survey, config)
    data = OpenSurvey(survey.id).pack()
    queued = 0
    for row in surveys.recipients(session, survey, today, only_missing=missing_only):
        member_id, telegram_id, _unit, language, _blocked = row
        locale = pick_locale(language)
        text = renderer.render(locale, "surveys/reminder" if reminder else "surveys/invite", survey=view)
        label = renderer.label(locale, "survey_start")
        keyboard = {"inline_keyboard": [[{"text": label, "callback_data": data}]]}
        queued += notify(
            session,
            telegram_id,
            text,
            now=now,
            kind=kind,
            keyboard=keyboard,
            dedupe_key=f"{kind}:{survey.id}:{member_id}",
            member_id=member_id,
            personal=False,
        )
    return queued


async def run_surveys(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: invitations, reminders, last batches; one transaction per survey."""
    now = now or services.clock.now()
    before = timedelta(hours=services.config.surveys.reminder_hours)
    failures = queued = 0
    steps = (
        (lambda s: surveys.due_invitations(s, now), KIND_INVITE),
        (lambda s: surveys.due_reminders(s, now, before), KIND_REMIND),
    )
    for due, kind in steps:
        for survey in await services.db.read(due):
            try:
                queued += await services.db.write(
                    lambda session, sid=survey.id, k=kind: _tell(services, session, session.get(Survey, sid), k, now)
                )
            except Exception:  # one survey failing must not block the others; it is retried at the next tick
                log.exception("survey %s: %s failed", survey.id, kind)
                failures += 1
    for survey_id in await services.db.read(surveys.sealed_surveys, now):
        mixed = await services.db.write(surveys.mix, survey_id)
        log.info("survey %s: last %d anonymous responses stored", survey_id, mixed)
    if queued:
        log.info("surveys: %d notices queued", queued)
    return "partial" if failures else "ok"


def next_tick(config: Config, after: datetime) -> datetime:
    """Survey work is looked for at every scheduler tick."""
    return after + timedelta(seconds=config.tick_seconds)


TASKS = (TaskSpec("surveys", run_surveys, next_tick),)
