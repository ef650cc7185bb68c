"""Clubs from a file (`python bot.py import-clubs FILE`): TOML or CSV, line-precise errors, idempotent by code.

Every problem is reported as (line, problem key, detail) and nothing is stored unless the whole file is good.
A club whose code exists already is updated (name, description, joining, units); leaders listed are added.

TOML: one [[club]] table per club.

    [[club]]
    code = "run"                      # required: 2-16 lowercase letters, digits, - or _ (stable: the import key)
    name = "航天跑团"                   # required, at most 40 characters
    description = "每周六晨跑"          # optional, at most 500 characters
    open = false                      # optional: true (default) anyone joins; false: a leader approves
    units = ["i801", "i805"]          # optional: the units it is open to (default: every unit)
    leaders = ["i801:A1234"]          # optional: unit code and employee number of each leader

CSV: a header line, then one club per line; columns code,name,description,open,units,leaders, where units and
leaders are separated by spaces and open is true/false (or 是/否, yes/no, 1/0).
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from models import clubs, members
from models.clubs import ClubDraft
from models.members import Actor

Problem = tuple[int, str, str]
HEADER = re.compile(r"^\s*\[\[\s*club\s*\]\]")
KEYS = ("code", "name", "description", "open", "units", "leaders")
TRUE = {"true", "1", "yes", "y", "是"}
FALSE = {"false", "0", "no", "n", "否", ""}
ERROR_LINE = re.compile(r"at line (\d+)")
# Clubs imported from a file are saved as if by a bureau admin; 0 is no Telegram account.
CLI_ACTOR = Actor(0, None, True, frozenset(), frozenset())


class ClubFileError(Exception):
    """The file cannot be imported; `problems` lists (line, problem key, detail), sorted by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p[0])
        super().__init__("; ".join(f"line {line}: {key} {detail}" for line, key, detail in self.problems))


@dataclass(frozen=True)
class ImportedClub:
    line: int
    draft: ClubDraft
    leaders: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(text)


def _words(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return str(value or "").replace(";", " ").replace(",", " ").split()


def _one(raw: dict[str, Any], line: int, units: set[str]) -> tuple[ImportedClub | None, list[Problem]]:
    """One club's values (TOML types or CSV text) as a draft, or its problems."""
    problems: list[Problem] = []
    for key in raw:
        if key not in KEYS:
            problems.append((line, "unknown_key", str(key)))
    code = str(raw.get("code") or "").strip().lower()
    name = str(raw.get("name") or "").strip()
    description = str(raw.get("description") or "").strip()
    if not code or not name:
        problems.append((line, "missing", "code" if not code else "name"))
    elif not clubs.CODE_PATTERN.match(code):
        problems.append((line, "bad_code", code[:40]))
    if len(name) > clubs.NAME_MAX:
        problems.append((line, "too_long", f"name ({clubs.NAME_MAX})"))
    if len(description) > clubs.DESCRIPTION_MAX:
        problems.append((line, "too_long", f"description ({clubs.DESCRIPTION_MAX})"))
    try:
        open_ = _flag(raw.get("open", True))
    except ValueError as exc:
        problems.append((line, "bad_bool", f"open: {exc}"[:60]))
        open_ = True
    chosen = [u.lower() for u in _words(raw.get("units"))]
    unknown = [u for u in chosen if u not in units]
    if unknown:
        problems.append((line, "unknown_unit", ", ".join(unknown)[:60]))
    leaders: list[tuple[str, str]] = []
    for entry in _words(raw.get("leaders")):
        unit, _, number = entry.partition(":")
        if not number or unit.lower() not in units:
            problems.append((line, "bad_leader", entry[:60]))
        else:
            leaders.append((unit.lower(), number))
    if problems:
        return None, problems
    draft = ClubDraft(code, name, description, open_, tuple(chosen))
    return ImportedClub(line, draft, tuple(leaders)), []


def _toml(text: str, units: set[str]) -> tuple[list[ImportedClub], list[Problem]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = ERROR_LINE.search(str(exc))
        return [], [(int(found.group(1)) if found else 1, "syntax", str(exc).split(" (at line")[0][:80])]
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if HEADER.match(line)]
    entries = data.get("club")
    other = [k for k in data if k != "club"]
    problems: list[Problem] = [(1, "unknown_key", k) for k in other]
    if not isinstance(entries, list) or not entries:
        return [], [*problems, (1, "no_clubs", "")]
    found = []
    for index, raw in enumerate(entries):
        line = starts[index] if index < len(starts) else 1
        club, wrong = _one(raw, line, units)
        problems += wrong
        if club is not None:
            found.append(club)
    return found, problems


def _csv(text: str, units: set[str]) -> tuple[list[ImportedClub], list[Problem]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [k for k in ("code", "name") if k not in header]
    if missing:
        return [], [(1, "missing_columns", ", ".join(missing))]
    found, problems = [], []
    for raw in reader:
        line = reader.line_num
        values = {k.strip().lower(): v for k, v in raw.items() if k is not None and v not in (None, "")}
        club, wrong = _one(values, line, units)
        problems += wrong
        if club is not None:
            found.append(club)
    if not found and not problems:
        problems.append((1, "no_clubs", ""))
    return found, problems


def parse_clubs_file(text: str, fmt: str, units: Iterable[str]) -> list[ImportedClub]:
    """The clubs in a TOML or CSV text; ClubFileError with every problem (and repeated codes)."""
    known = set(units)
    found, problems = (_toml if fmt == "toml" else _csv)(text, known)
    seen: dict[str, int] = {}
    for club in found:
        if club.draft.code in seen:
            problems.append((club.line, "duplicate_code", f"{club.draft.code} ({seen[club.draft.code]})"))
        seen.setdefault(club.draft.code, club.line)
    if problems:
        raise ClubFileError(problems)
    return found


def import_clubs(session: Session, found: list[ImportedClub], units: Iterable[str], now: datetime) -> ImportResult:
    """Create or update every club and name its leaders, in the caller's one transaction."""
    known = set(units)
    created, updated, problems = [], [], []
    for entry in found:
        club, new = clubs.save_club(session, CLI_ACTOR, entry.draft, known, now)
        (created if new else updated).append(club.code)
        for unit, number in entry.leaders:
            member = members.find_member(session, unit, number)
            if member is None or not member.verified:
                problems.append((entry.line, "unknown_leader", f"{unit}:{number}"[:60]))
                continue
            clubs.set_leader(session, CLI_ACTOR, club.id, member, True, now)
    if problems:
        raise ClubFileError(problems)
    return ImportResult(created, updated)
