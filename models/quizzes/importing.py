"""A quiz and its question bank from a TOML file (`python bot.py import-quiz FILE`), with line-precise errors.

Every problem is reported as (line, problem key, detail) and nothing is stored unless the whole file is good.
Times are in the organisation's time zone unless they carry an offset. Importing a file with the same `key` again
replaces the quiz and its questions while nobody has started an attempt; after that it is refused.

    [quiz]
    key = "safety-2026-12"              # required, at most 64 characters: re-importing updates this quiz
    title = "安全生产知识竞赛"            # required, at most 60 characters
    intro = "每天可答 3 次，取最好成绩"     # optional, at most 500 characters
    unit = "i801"                       # optional: only this unit, managed by its cadres (default: every unit)
    questions_per_attempt = 5           # questions drawn per attempt, 1-50, at most the bank's size
    seconds_per_question = 20           # 5-300
    attempts_per_day = 3                # 1-20
    opens_at = 2026-12-01T09:00:00      # required
    closes_at = 2026-12-31T18:00:00     # required, after opens_at
    draft = false                       # optional: true keeps it unpublished (publish it in /admin)

    [[question]]                        # the bank: one table per question (at most 500)
    text = "发现火灾应拨打哪个电话？"        # required, at most 300 characters
    options = ["110", "119", "120"]     # 2-6 options, each at most 80 characters
    answer = 2                          # the number of the right option (1 = the first)
    explanation = "火警电话是 119"        # optional, at most 200 characters, shown after the answer

Problem keys: syntax, unknown_key, missing, too_long, bad_text, bad_number, out_of_range, bad_time, before_open,
bad_bool, unknown_unit, no_questions, bank_too_small, bad_options, bad_answer, started.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func
from sqlmodel import Session, select

from models import audit
from models.clock import parse_local_datetime
from models.errors import BadInput
from models.quizzes import (
    EXPLANATION_MAX,
    INTRO_MAX,
    KEY_MAX,
    MAX_ATTEMPTS_PER_DAY,
    MAX_OPTIONS,
    MAX_PER_ATTEMPT,
    MAX_QUESTIONS,
    MAX_SECONDS,
    MIN_OPTIONS,
    MIN_SECONDS,
    OPTION_MAX,
    QUESTION_MAX,
    TITLE_MAX,
    Quiz,
    QuizAttempt,
    QuizQuestion,
    QuizStatus,
)

Problem = tuple[int, str, str]
QUIZ_KEYS = {
    "key",
    "title",
    "intro",
    "unit",
    "questions_per_attempt",
    "seconds_per_question",
    "attempts_per_day",
    "opens_at",
    "closes_at",
    "draft",
}
QUESTION_KEYS = {"text", "options", "answer", "explanation"}
TOML_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
TOML_ERROR_LINE = re.compile(r"at line (\d+)")


class QuizFileError(Exception):
    """The file has problems: (line, key, detail) each; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = sorted(problems)


@dataclass
class ParsedQuestion:
    text: str
    options: list[str]
    correct: int
    explanation: str


@dataclass
class ParsedQuiz:
    key: str
    title: str
    intro: str
    unit_code: str | None
    questions_per_attempt: int
    seconds_per_question: int
    attempts_per_day: int
    opens_at: datetime
    closes_at: datetime
    draft: bool
    questions: list[ParsedQuestion] = field(default_factory=list)


def _key_lines(text: str) -> tuple[dict[str, int], int, list[int], list[dict[str, int]]]:
    """Line numbers: each [quiz] key, the [quiz] header, each [[question]] header and each question's keys."""
    quiz_keys: dict[str, int] = {}
    quiz_line = 1
    starts: list[int] = []
    question_keys: list[dict[str, int]] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[[") and line.rstrip("] ").lstrip("[ ") == "question":
            section = "question"
            starts.append(number)
            question_keys.append({})
            continue
        if line.startswith("["):
            section = line.strip("[] ")
            if section == "quiz":
                quiz_line = number
            continue
        match = TOML_KEY.match(line)
        if match is None:
            continue
        key = match.group(1).strip("\"'")
        if section == "quiz":
            quiz_keys.setdefault(key, number)
        elif section == "question" and question_keys:
            question_keys[-1].setdefault(key, number)
    return quiz_keys, quiz_line, starts, question_keys


def _time(value: Any, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(UTC)
    if isinstance(value, str):
        try:
            return parse_local_datetime(value, tz)
        except BadInput:
            pass
    raise ValueError(value)


def parse_quiz_file(text: str, tz: ZoneInfo, units: set[str]) -> ParsedQuiz:
    """The quiz in a TOML text; QuizFileError with every problem (and its line) otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = TOML_ERROR_LINE.search(str(exc))
        raise QuizFileError([(int(found.group(1)) if found else 1, "syntax", str(exc).split(" (at line")[0])]) from None
    quiz_keys, quiz_line, starts, question_keys = _key_lines(text)
    problems: list[Problem] = []
    for key in data:
        if key not in ("quiz", "question"):
            problems.append((1, "unknown_key", key))
    raw = data.get("quiz")
    if not isinstance(raw, dict):
        raise QuizFileError([*problems, (1, "missing", "[quiz]")])

    def line(key: str) -> int:
        return quiz_keys.get(key, quiz_line)

    for key in raw:
        if key not in QUIZ_KEYS:
            problems.append((line(key), "unknown_key", key))

    def text_of(key: str, limit: int, required: bool, where: dict[str, Any] = raw, at: Any = line) -> str:
        value = where.get(key, "")
        if not isinstance(value, str):
            problems.append((at(key), "bad_text", key))
            return ""
        value = value.strip()
        if required and not value:
            problems.append((at(key), "missing", key))
        elif len(value) > limit:
            problems.append((at(key), "too_long", f"{key} ({len(value)} > {limit})"))
        return value

    def number(key: str, low: int, high: int) -> int:
        value = raw.get(key)
        if value is None:
            problems.append((line(key), "missing", key))
            return low
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append((line(key), "bad_number", f"{key} = {value!r}"))
            return low
        if not low <= value <= high:
            problems.append((line(key), "out_of_range", f"{key} = {value} ({low}-{high})"))
        return value

    def moment(key: str) -> datetime | None:
        if key not in raw:
            problems.append((line(key), "missing", key))
            return None
        try:
            return _time(raw[key], tz)
        except ValueError:
            problems.append((line(key), "bad_time", f"{key} = {raw[key]!r}"))
            return None

    key = text_of("key", KEY_MAX, True)
    title = text_of("title", TITLE_MAX, True)
    intro = text_of("intro", INTRO_MAX, False)
    unit = raw.get("unit")
    if unit is not None and (not isinstance(unit, str) or unit not in units):
        problems.append((line("unit"), "unknown_unit", f"unit = {unit!r}"))
    per_attempt = number("questions_per_attempt", 1, MAX_PER_ATTEMPT)
    seconds = number("seconds_per_question", MIN_SECONDS, MAX_SECONDS)
    per_day = number("attempts_per_day", 1, MAX_ATTEMPTS_PER_DAY)
    opens_at, closes_at = moment("opens_at"), moment("closes_at")
    if opens_at and closes_at and closes_at <= opens_at:
        problems.append((line("closes_at"), "before_open", "closes_at"))
    draft = raw.get("draft", False)
    if not isinstance(draft, bool):
        problems.append((line("draft"), "bad_bool", f"draft = {draft!r}"))

    questions: list[ParsedQuestion] = []
    raw_questions = data.get("question", [])
    if not isinstance(raw_questions, list) or not raw_questions:
        problems.append((len(text.splitlines()) or 1, "no_questions", ""))
        raw_questions = []
    if len(raw_questions) > MAX_QUESTIONS:
        problems.append((starts[MAX_QUESTIONS], "out_of_range", f"question ({len(raw_questions)} > {MAX_QUESTIONS})"))
    for index, entry in enumerate(raw_questions):
        start = starts[index] if index < len(starts) else 1
        keys = question_keys[index] if index < len(question_keys) else {}

        def at(name: str, start: int = start, keys: dict[str, int] = keys) -> int:
            return keys.get(name, start)

        if not isinstance(entry, dict):
            problems.append((start, "syntax", "question"))
            continue
        for name in entry:
            if name not in QUESTION_KEYS:
                problems.append((at(name), "unknown_key", name))
        question = text_of("text", QUESTION_MAX, True, entry, at)
        explanation = text_of("explanation", EXPLANATION_MAX, False, entry, at)
        options = entry.get("options")
        good = (
            isinstance(options, list)
            and MIN_OPTIONS <= len(options) <= MAX_OPTIONS
            and all(isinstance(o, str) and o.strip() and len(o.strip()) <= OPTION_MAX for o in options)
        )
        if not good:
            problems.append((at("options"), "bad_options", f"{MIN_OPTIONS}-{MAX_OPTIONS} × ≤{OPTION_MAX}"))
            options = []
        elif len({o.strip() for o in options}) != len(options):
            problems.append((at("options"), "bad_options", "twice"))
        right = entry.get("answer")
        in_range = isinstance(right, int) and not isinstance(right, bool) and 1 <= right <= len(options)
        if options and not in_range:
            problems.append((at("answer"), "bad_answer", f"answer = {right!r}"))
        if not in_range:
            right = 1
        questions.append(ParsedQuestion(question, [o.strip() for o in options], right - 1, explanation))
    if raw_questions and per_attempt > len(raw_questions):
        problems.append((line("questions_per_attempt"), "bank_too_small", f"{per_attempt} > {len(raw_questions)}"))
    if problems:
        raise QuizFileError(problems)
    return ParsedQuiz(key, title, intro, unit, per_attempt, seconds, per_day, opens_at, closes_at, draft, questions)


def store_quiz(session: Session, parsed: ParsedQuiz, actor_telegram_id: int, now: datetime) -> tuple[Quiz, bool]:
    """Create the quiz, or replace the one with the same key while nobody has started it; (quiz, created)."""
    quiz = session.exec(select(Quiz).where(Quiz.key == parsed.key)).first()
    created = quiz is None
    if quiz is None:
        quiz = Quiz(key=parsed.key, created_by=actor_telegram_id, created_at=now, **_fields(parsed))
        session.add(quiz)
        session.flush()
    else:
        started = session.exec(select(func.count()).where(QuizAttempt.quiz_id == quiz.id)).one()
        if started:
            raise QuizFileError([(1, "started", parsed.key)])
        for name, value in _fields(parsed).items():
            setattr(quiz, name, value)
        session.add(quiz)
        session.exec(delete(QuizQuestion).where(QuizQuestion.quiz_id == quiz.id))
        session.flush()
    for position, q in enumerate(parsed.questions):
        session.add(
            QuizQuestion(
                quiz_id=quiz.id,
                position=position,
                text=q.text,
                options=q.options,
                correct=q.correct,
                explanation=q.explanation,
            )
        )
    audit.record(session, actor_telegram_id, "quiz_import", f"quiz:{quiz.id}", questions=len(parsed.questions))
    session.flush()
    return quiz, created


def _fields(parsed: ParsedQuiz) -> dict[str, Any]:
    return {
        "title": parsed.title,
        "intro": parsed.intro,
        "unit_code": parsed.unit_code,
        "questions_per_attempt": parsed.questions_per_attempt,
        "seconds_per_question": parsed.seconds_per_question,
        "attempts_per_day": parsed.attempts_per_day,
        "opens_at": parsed.opens_at,
        "closes_at": parsed.closes_at,
        "status": QuizStatus.DRAFT if parsed.draft else QuizStatus.PUBLISHED,
    }
