"""A survey from a TOML file (`python bot.py import-survey FILE.toml`), with line-precise errors.

Every problem is reported as (line, problem key, detail) and nothing is stored unless the whole file is good.
Times are in the organisation's time zone unless they carry an offset.

    title = "2026 年职工需求调查"          # required, at most 60 characters
    intro = "约 3 分钟，匿名填写"           # optional, at most 1000 characters
    anonymous = true                      # default true
    results_public = false                # respondents may see the results after closing (default false)
    opens_at = 2026-12-05T09:00:00        # required
    closes_at = 2026-12-15T18:00:00       # required, after opens_at
    points = 5                            # points for a completed response (rule survey_answer, its daily cap)
    units = ["i801", "i802"]              # optional: only these units (default: all units in your scope)
    under_35 = false                      # optional: only members under 35
    clubs = []                            # optional: club ids

    [[question]]
    text = "您最希望工会组织哪类活动？"      # required, at most 300 characters
    kind = "multi"                        # single | multi | rating | text (or 单选 多选 评分 文字)
    options = ["体育", "读书", "亲子"]      # single and multi: 2 to 10 options, at most 40 characters each
    max_choices = 2                       # multi only (optional)
    max_length = 300                      # text only, 1 to 1000 (default 300)
    required = true                       # default true

Problem keys: syntax, unknown_key, bad_text, bad_number, bad_time, bad_bool, bad_list, bad_kind, and the checks of
models/surveys/manage.py: missing, too_long, options_count, duplicate_option, choice_only, out_of_range,
questions_count, before_open, in_past, unknown_unit.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from models.audience import Audience
from models.surveys.manage import Problem, check_draft, check_question
from models.surveys.tables import TEXT_LIMIT_DEFAULT, Kind, Question, SurveyDraft

TOP_KEYS = {
    "title", "intro", "anonymous", "results_public", "opens_at", "closes_at", "points", "units", "under_35", "clubs",
    "question",
}  # fmt: skip
QUESTION_KEYS = {"text", "kind", "options", "max_choices", "max_length", "required"}
KIND_NAMES = {"单选": Kind.SINGLE, "多选": Kind.MULTI, "评分": Kind.RATING, "文字": Kind.TEXT}
TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\"'-]+)\s*=")
TOML_ERROR_LINE = re.compile(r"at line (\d+)")
QUESTION_HEADER = re.compile(r"^\s*\[\[\s*question\s*\]\]\s*(#.*)?$")


class SurveyFileError(Exception):
    """The file has problems: each (line, key, detail)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = sorted(problems)


def _key_lines(text: str) -> tuple[dict[str, int], list[int], list[dict[str, int]]]:
    """The line of each top-level key, where each [[question]] starts, and the line of each of its keys."""
    top: dict[str, int] = {}
    starts: list[int] = []
    keys: list[dict[str, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if QUESTION_HEADER.match(line):
            starts.append(number)
            keys.append({})
            continue
        found = TOML_KEY.match(line)
        if found is not None:
            (keys[-1] if keys else top).setdefault(found.group(1).strip("\"'"), number)
    return top, starts, keys


def _time(value: Any, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, str):
        return _time(datetime.fromisoformat(value.replace(" ", "T")), tz)
    raise ValueError(value)


def parse_survey_file(text: str, tz: ZoneInfo, units: Iterable[str], now: datetime) -> SurveyDraft:
    """The survey in a TOML text; SurveyFileError with every problem, each on its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = TOML_ERROR_LINE.search(str(exc))
        raise SurveyFileError(
            [(int(found.group(1)) if found else 1, "syntax", str(exc).split(" (at line")[0])]
        ) from None
    top, starts, question_keys = _key_lines(text)
    problems: list[Problem] = []

    def get(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, line: int) -> Any:
        value = raw.get(key, default)
        if value is default:
            return default
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            name = {str: "bad_text", int: "bad_number", bool: "bad_bool", list: "bad_list"}.get(kind, "bad_text")  # type: ignore[call-overload]
            problems.append((line, name, key))
            return default
        return value

    for key in data:
        if key not in TOP_KEYS:
            problems.append((top.get(key, 1), "unknown_key", key))
    title = get(data, "title", str, "", top.get("title", 1))
    times: dict[str, datetime | None] = {}
    for key in ("opens_at", "closes_at"):
        line = top.get(key, 1)
        if key not in data:
            problems.append((line, "missing", key))
            times[key] = None
            continue
        try:
            times[key] = _time(data[key], tz)
        except (ValueError, TypeError):
            problems.append((line, "bad_time", f"{key}={data[key]!r}"))
            times[key] = None
    unit_list = get(data, "units", list, [], top.get("units", 1))
    club_list = get(data, "clubs", list, [], top.get("clubs", 1))
    if not all(isinstance(u, str) for u in unit_list):
        problems.append((top.get("units", 1), "bad_list", "units"))
        unit_list = []
    if not all(isinstance(c, int) for c in club_list):
        problems.append((top.get("clubs", 1), "bad_list", "clubs"))
        club_list = []
    questions: list[Question] = []
    raw_questions = data.get("question", [])
    if not isinstance(raw_questions, list):
        problems.append((top.get("question", 1), "syntax", "question"))
        raw_questions = []
    for index, raw in enumerate(raw_questions):
        start = starts[index] if index < len(starts) else 1
        lines = question_keys[index] if index < len(question_keys) else {}

        def at(key: str, lines: dict[str, int] = lines, start: int = start) -> int:
            return lines.get(key, start)

        for key in raw:
            if key not in QUESTION_KEYS:
                problems.append((at(key), "unknown_key", key))
        kind_text = get(raw, "kind", str, "", at("kind"))
        kind = KIND_NAMES.get(kind_text) or (Kind(kind_text) if kind_text in set(Kind) else None)
        if kind is None:
            problems.append((at("kind"), "bad_kind", f"kind={kind_text!r}"))
            continue
        options = get(raw, "options", list, [], at("options"))
        if not all(isinstance(o, str) for o in options):
            problems.append((at("options"), "bad_list", "options"))
            options = []
        question = Question(
            text=get(raw, "text", str, "", at("text")),
            kind=kind,
            options=tuple(options),
            required=get(raw, "required", bool, True, at("required")),
            max_choices=get(raw, "max_choices", int, None, at("max_choices")),
            max_length=get(raw, "max_length", int, TEXT_LIMIT_DEFAULT, at("max_length")),
        )
        problems.extend((at(field), key, field) for key, field in check_question(question))
        questions.append(question)
    opens_at, closes_at = times["opens_at"], times["closes_at"]
    if problems or opens_at is None or closes_at is None:
        raise SurveyFileError(problems)
    draft = SurveyDraft(
        title=title,
        intro=get(data, "intro", str, "", top.get("intro", 1)),
        opens_at=opens_at,
        closes_at=closes_at,
        questions=tuple(questions),
        audience=Audience(
            units=tuple(unit_list),
            under_35=get(data, "under_35", bool, False, top.get("under_35", 1)),
            clubs=tuple(club_list),
        ),
        anonymous=get(data, "anonymous", bool, True, top.get("anonymous", 1)),
        points=get(data, "points", int, 0, top.get("points", 1)),
        results_public=get(data, "results_public", bool, False, top.get("results_public", 1)),
    )
    for key, field in check_draft(draft, now, units):
        line = top.get("units" if field == "units" else field, starts[0] if field == "question" and starts else 1)
        problems.append((line, key, field))
    if problems:
        raise SurveyFileError(problems)
    return draft
