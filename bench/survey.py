"""Offline survey storm: members answer and submit a 10-question anonymous survey through the real bot.

Run: `.venv/bin/python bench/survey.py [--members 5000] [--db URL]`.

The bot is build_application over a fake Bot API (AIORateLimiter on, PTB's update fetcher running updates from
app.update_queue at concurrent_updates, every update stored in the durable inbox first, as the poller does).
Each member sends 12 updates: Start, ten answers (eight choices or ratings as button presses on the question
message, one multiple choice ticked and confirmed with Done, one typed free-text answer) and Submit. Updates go
in rounds: everybody's next step at once, so one member's steps stay in order while 5,000 members interleave.

- floor: PTB's own Application answering the same number of presses (answerCallbackQuery only), no database;
- storm: the 5,000 members -> submissions per second, and updates per second against the floor's;
- results: a cadre opens the results and the charts of the 5,000 responses -> milliseconds until both are
  answered and every chart image is sent.

Checks: every member submitted once (one participation each, points paid once), 5,000 responses stored (the
last anonymous batch mixed at close), every press answered. Exit 1 if a check fails. The last line is
`survey_submits_per_s=<n> ratio_vs_floor=<r> results_ms=<n>`.

`--answering N` lets only N members answer through the bot (the rest are written through the same model
operations before the results are read): the full storm of 65,000 updates takes minutes on a busy machine.
"""

from __future__ import annotations

import argparse
import gc
import logging
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert
from sqlmodel import Session, col, select
from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bench._common import (
    ADMIN_ID,
    RAW_UPDATES,
    ThreadProfiler,
    TimedBotAPI,
    Timing,
    _message_ids,
    _update_ids,
    add_common_arguments,
    bare_application,
    callback_update,
    count_members,
    fail,
    feed_at_once,
    print_profile,
    run_benchmark,
    start_bare,
    start_bot,
    stop_bare,
    stop_bot,
)
from buttons.surveys import Choose, DoneChoosing, StartSurvey, SubmitSurvey, SurveyCharts, SurveyResults
from config import Config
from models import surveys
from models.clock import utcnow
from models.members import Actor, Member, Status
from models.points import LedgerEntry
from models.surveys import Kind, Question, SurveyDraft
from tests.harness import Shown

log = logging.getLogger("bench.survey")
TARGETS = {"ratio_vs_floor": 0.3, "results_ms": 2000}
MEMBER_BASE_ID = 5_000_000_000
QUESTION_MESSAGE = 900_000_000
INSERT_CHUNK = 500
BUREAU = Actor(ADMIN_ID, None, True, frozenset({None}), frozenset())
OPTIONS = ("很满意", "满意", "一般", "不满意")
QUESTIONS = (
    *(Question(f"问题 {n}：您对这项服务满意吗？", Kind.SINGLE, OPTIONS) for n in range(1, 6)),
    Question("您希望增加哪些活动？", Kind.MULTI, ("体育", "读书", "亲子", "讲座"), max_choices=2),
    Question("食堂打分", Kind.RATING),
    Question("班车打分", Kind.RATING),
    Question("健身房打分", Kind.RATING),
    Question("其他建议", Kind.TEXT, max_length=200),
)


def seed(session: Session, unit_codes: list[str], count: int) -> tuple[list[int], int]:
    """Verified members and the open survey; returns the members' Telegram ids and the survey id."""
    now = utcnow()
    rows = [
        {
            "telegram_id": MEMBER_BASE_ID + i,
            "unit_code": unit_codes[i % len(unit_codes)],
            "employee_no": f"S{i:06d}",
            "name": f"会员{i}",
            "status": Status.VERIFIED.value,
            "language": "zh",
            "ranking_opt_out": False,
            "blocked_bot": False,
            "balance": 0,
            "birth_year": 1970 + i % 40,
            "created_at": now,
            "verified_at": now,
        }
        for i in range(count)
    ]
    for start in range(0, count, INSERT_CHUNK):
        session.execute(insert(Member).values(rows[start : start + INSERT_CHUNK]))
    draft = SurveyDraft(
        title="职工需求调查",
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=1),
        questions=QUESTIONS,
        points=5,
    )
    survey = surveys.store_survey(session, BUREAU, draft, unit_codes, now)
    found = session.execute(select(Member.telegram_id).where(col(Member.telegram_id) >= MEMBER_BASE_ID))
    return sorted(found.scalars()), survey.id


def text_update(app: Any, user_id: int, text: str) -> Update:
    """A typed private message, as Telegram delivers it."""
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "zh"}
    data = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
        },
    }
    RAW_UPDATES[data["update_id"]] = data
    return Update.de_json(data, app.bot)


def steps(survey_id: int, n: int) -> list[str | None]:
    """One member's presses in order (None: the typed answer)."""
    presses: list[str | None] = [StartSurvey(survey_id).pack()]
    for index, question in enumerate(QUESTIONS):
        if question.kind == Kind.SINGLE:
            presses.append(Choose(survey_id, index, (n + index) % len(OPTIONS)).pack())
        elif question.kind == Kind.MULTI:
            presses.append(Choose(survey_id, index, n % 4).pack())
            presses.append(DoneChoosing(survey_id, index).pack())
        elif question.kind == Kind.RATING:
            presses.append(Choose(survey_id, index, 1 + (n + index) % 5).pack())
        else:
            presses.append(None)
    presses.append(SubmitSurvey(survey_id).pack())
    return presses


def rounds(app: Any, api: TimedBotAPI, people: list[int], survey_id: int) -> list[list[Update]]:
    """Round k: every member's k-th update (presses come from each member's question message)."""
    messages = {}
    for telegram_id in people:
        shown = Shown(QUESTION_MESSAGE, telegram_id, "问题")
        api.chats.setdefault(telegram_id, []).append(shown)
        messages[telegram_id] = api._message_json(shown)
    plans = {t: steps(survey_id, n) for n, t in enumerate(people)}
    length = len(next(iter(plans.values())))
    made = []
    for k in range(length):
        batch = []
        for telegram_id in people:
            data = plans[telegram_id][k]
            if data is None:
                batch.append(text_update(app, telegram_id, f"希望多组织亲子活动 {telegram_id % 97}"))
            else:
                query_id = f"s{k}-{telegram_id}"
                batch.append(callback_update(app, query_id, telegram_id, data, messages[telegram_id]))
        made.append(batch)
    return made


async def answer_only(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """The floor's handler: answer the press, nothing else."""
    await update.callback_query.answer()


async def floor(config: Config, people: list[int], count: int) -> Timing:
    """PTB's own Application answering `count` presses, no database: same fake API, queue and concurrency."""
    api = TimedBotAPI()
    app = bare_application(config, api)
    app.add_handler(CallbackQueryHandler(answer_only))
    message = api._message_json(Shown(QUESTION_MESSAGE, people[0], "问题"))
    data = Choose(1, 0, 1).pack()
    presses = [callback_update(app, f"f{i}", people[i % len(people)], data, message) for i in range(count)]
    await start_bare(app)
    try:
        await feed_at_once(app, presses[: count // 10], store=False)
        gc.collect()
        timing = await feed_at_once(app, presses, store=False)
    finally:
        await stop_bare(app)
    return timing


def answer_directly(session: Session, telegram_ids: list[int], survey_id: int) -> None:
    """The other members' responses, written in bulk as `mix` stores anonymous ones (random ids, no member, no
    time) with their participation rows: only the size of the results matters for them."""
    found = session.execute(select(Member.id, Member.unit_code).where(col(Member.telegram_id).in_(telegram_ids)))
    responses, answers, joined = [], [], []
    for n, (member_id, unit_code) in enumerate(found.all()):
        response_id = secrets.randbits(62)
        joined.append({"survey_id": survey_id, "member_id": member_id})
        responses.append({"id": response_id, "survey_id": survey_id, "unit_code": unit_code, "age_band": "35plus"})
        for index, question in enumerate(QUESTIONS):
            row = {"response_id": response_id, "question": index, "item": 0, "rating": None, "text": None}
            if question.kind == Kind.TEXT:
                answers.append(row | {"text": f"建议 {n % 97}"})
            elif question.kind == Kind.RATING:
                answers.append(row | {"rating": 1 + (n + index) % 5})
            elif question.kind == Kind.MULTI:
                answers += [row | {"item": n % 4}, row | {"item": (n + 1) % 4}]
            else:
                answers.append(row | {"item": (n + index) % len(OPTIONS)})
    for table, rows in (
        (surveys.SurveyParticipation, joined),
        (surveys.SurveyResponse, responses),
        (surveys.SurveyAnswer, answers),
    ):
        for start in range(0, len(rows), INSERT_CHUNK):
            session.execute(insert(table).values(rows[start : start + INSERT_CHUNK]))


def tally(session: Session, survey_id: int) -> tuple[int, int, int]:
    """Participations, stored responses and survey points paid."""
    joined = session.execute(select(func.count()).select_from(surveys.SurveyParticipation)).scalar_one()
    stored = session.execute(
        select(func.count()).where(col(surveys.SurveyResponse.survey_id) == survey_id)
    ).scalar_one()
    paid = session.execute(select(func.count()).where(col(LedgerEntry.rule) == "survey_answer")).scalar_one()
    return int(joined), int(stored), int(paid)


async def run(args: argparse.Namespace, config: Config) -> int:
    """Seed, measure the floor, run the storm, read the results, check, print the figures."""
    bot = await start_bot(config)
    problems: list[str] = []
    try:
        if await bot.db.read(count_members):
            print("FAILED: the database already has members; give an empty one", file=sys.stderr)
            return 2
        everyone, survey_id = await bot.db.write(seed, [u.code for u in config.units], args.members)
        people, rest = everyone[: args.answering], everyone[args.answering :]
        plan = rounds(bot.app, bot.api, people, survey_id)
        updates = sum(len(r) for r in plan)
        concurrency = bot.app.update_processor.max_concurrent_updates
        print(
            f"setup: db={bot.db.dialect} members={len(everyone)} answering through the bot={len(people)} "
            f"questions={len(QUESTIONS)} "
            f"updates={updates} ({len(plan)} per member) concurrent_updates={concurrency}"
        )
        bare = await floor(config, people, min(updates, args.floor_presses))
        print(f"floor: PTB alone answering {bare.count} presses (no database): {bare.per_s:.0f}/s")
        gc.collect()
        profiler = ThreadProfiler(bot.db, profile=args.profile)
        await profiler.start()
        wall, cpu = time.perf_counter(), time.process_time()
        for k, batch in enumerate(plan):
            done = await feed_at_once(bot.app, batch, store=args.inbox)
            log.info("round %d: %.2fs wall, %.2fs cpu", k, done.wall, done.cpu)
        storm = Timing(updates, time.perf_counter() - wall, time.process_time() - cpu)
        stats = await profiler.stop()
        if stats is not None:
            print_profile(stats, updates, "storm")
        await bot.replies.drain()
        submits_per_s = len(people) / storm.wall
        print(
            f"storm: {len(people)} submissions in {storm.wall:.2f}s = {submits_per_s:.0f}/s; "
            f"{storm.per_s:.0f} updates/s, cpu {storm.cpu_ms:.3f} ms/update"
        )
        # Close: the scheduled work mixes the last anonymous ballots.
        mixed = await bot.db.write(surveys.mix, survey_id)
        joined, stored, paid = await bot.db.read(tally, survey_id)
        print(f"stored: {joined} participations, {stored} responses ({mixed} mixed at close), {paid} point awards")
        if not joined == stored == paid == len(people):
            problems.append(f"expected {len(people)} of each, got {joined}/{stored}/{paid}")
        if rest:
            # The other members' responses are written directly (the same model operations, no Telegram).
            await bot.db.write(answer_directly, rest, survey_id)
            print(f"seeded: {len(rest)} more responses through the model, for the results")
        unanswered = [q for batch in plan for u in batch if (q := u.callback_query) and q.id not in bot.api.answered_at]
        if unanswered:
            problems.append(f"{len(unanswered)} presses never answered")
        results_ms = await read_results(bot, survey_id)
        print(f"results: overview and {sum(q.kind != Kind.TEXT for q in QUESTIONS)} charts in {results_ms:.0f} ms")
        if bot.api.unexpected:
            problems.append(f"unexpected Bot API calls: {sorted(set(bot.api.unexpected))}")
    finally:
        await stop_bot(bot)
    figures = {"ratio_vs_floor": storm.per_s / bare.per_s, "results_ms": results_ms}
    for name, target in TARGETS.items():
        met = figures[name] <= target if name == "results_ms" else figures[name] >= target
        print(f"target {name} {'<=' if name == 'results_ms' else '>='} {target}: {'met' if met else 'MISSED'}")
    fail(problems)
    print(
        f"survey_submits_per_s={submits_per_s:.0f} ratio_vs_floor={figures['ratio_vs_floor']:.2f} "
        f"results_ms={results_ms:.0f}"
    )
    return 1 if problems else 0


async def read_results(bot: Any, survey_id: int) -> float:
    """A bureau admin presses Results, then Charts: milliseconds until both are answered and every image sent."""
    await bot.db.write(lambda s: s.add(Member(telegram_id=ADMIN_ID, unit_code="hq", status=Status.VERIFIED)))
    shown = Shown(QUESTION_MESSAGE, ADMIN_ID, "管理")
    bot.api.chats.setdefault(ADMIN_ID, []).append(shown)
    message = bot.api._message_json(shown)
    start = time.perf_counter()
    for n, data in enumerate((SurveyResults(survey_id).pack(), SurveyCharts(survey_id).pack())):
        await bot.app.process_update(callback_update(bot.app, f"r{n}", ADMIN_ID, data, message))
    await bot.replies.drain()
    elapsed = (time.perf_counter() - start) * 1000
    photos = [m for m in bot.api.chats[ADMIN_ID] if m.photo is not None]
    if len(photos) != sum(q.kind != Kind.TEXT for q in QUESTIONS):
        raise SystemExit(f"FAILED: {len(photos)} charts sent")
    return elapsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, members=5_000)
    parser.add_argument(
        "--answering",
        type=int,
        default=5_000,
        help="of the members, how many answer through the bot (default all 5000); the others' responses are written "
        "through the model operations, so the results still cover every member",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the storm (to stderr)")
    parser.add_argument("--floor-presses", type=int, default=20_000, help="presses the floor answers (20000)")
    args = parser.parse_args(argv)
    args.answering = min(args.answering, args.members)
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    return run_benchmark(parse_args(argv), "gongshe-survey-", run)


if __name__ == "__main__":
    sys.exit(main())
