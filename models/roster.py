"""Reading a member roster file (CSV) with line-precise errors (`python bot.py import-roster FILE`).

The roster is the union's list of its members; a person who registers with a unit and employee number on it,
under the same name, is verified at once. The file is CSV with a header row and one member per row:

    unit_code,employee_no,name,birth_year
    i801,A10023,张三,1988
    i801,A10024,李四,

Columns (English or Chinese header, any order): unit_code 单位代码 (a unit code from config.toml),
employee_no 工号 (matched case-insensitively), name 姓名, birth_year 出生年份 (optional). Blank lines are
skipped. UTF-8 (with or without BOM) is read, and so is GBK/GB18030 as Excel saves "CSV (Comma delimited)" on
Chinese Windows; "CSV UTF-8" is the safer choice. Every bad line is reported with its line number and nothing
is imported until the whole file is good.

Importing adds new rows, updates changed names and birth years, counts identical rows as unchanged (so
importing the same file twice reports no changes) and verifies waiting requests the roster now confirms.
With --remove-missing, entries of the units that appear in the file which the file no longer lists are
removed, and the verified member registered under each is deleted as if they had deleted their account in
/me (open welfare claims released and refunded; name, employee number and Telegram account erased; the points
ledger stays, anonymised). Units with no row in the file are left alone. It first only shows who would be
removed; --yes does it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from models.members import RosterRow

# Header names accepted for each column (English or Chinese).
COLUMNS = {
    "unit_code": ("unit_code", "unit", "单位代码"),
    "employee_no": ("employee_no", "employee_number", "工号"),
    "name": ("name", "姓名"),
    "birth_year": ("birth_year", "出生年份"),
}
REQUIRED = ("unit_code", "employee_no", "name")
OLDEST_BIRTH_YEAR = 1930
YOUNGEST_BIRTH_YEAR = 2015


class RosterFileError(Exception):
    """The file cannot be imported; `problems` lists (line, problem key, details) for the message template."""

    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        super().__init__("; ".join(f"line {line}: {key} {detail}" for line, key, detail in problems))
        self.problems = problems


def parse_roster_csv(text: str, unit_codes: Iterable[str], employee_no_pattern: str) -> list[RosterRow]:
    """Parse roster CSV text; every bad line is reported, and nothing is returned unless all are good."""
    units = set(unit_codes)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RosterFileError([(1, "empty_file", "")]) from None
    index: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for i, h in enumerate(header):
            if h in names:
                index[key] = i
    missing = [k for k in REQUIRED if k not in index]
    if missing:
        raise RosterFileError([(1, "missing_columns", ", ".join(missing))])
    rows: list[RosterRow] = []
    problems: list[tuple[int, str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for line_no, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue

        def cell(key: str, record: list[str] = record) -> str:
            i = index.get(key)
            return record[i].strip() if i is not None and i < len(record) else ""

        unit, employee_no, name = cell("unit_code").lower(), cell("employee_no").upper(), " ".join(cell("name").split())
        birth_text = cell("birth_year")
        if unit not in units:
            problems.append((line_no, "unknown_unit", unit))
            continue
        if not re.fullmatch(employee_no_pattern, employee_no):
            problems.append((line_no, "bad_employee_no", employee_no))
            continue
        if not name:
            problems.append((line_no, "empty_name", ""))
            continue
        birth_year = None
        if birth_text:
            if not birth_text.isdigit() or not OLDEST_BIRTH_YEAR <= int(birth_text) <= YOUNGEST_BIRTH_YEAR:
                problems.append((line_no, "bad_birth_year", birth_text))
                continue
            birth_year = int(birth_text)
        if (unit, employee_no) in seen:
            problems.append((line_no, "duplicate", str(seen[(unit, employee_no)])))
            continue
        seen[(unit, employee_no)] = line_no
        rows.append(RosterRow(unit, employee_no, name, birth_year))
    if problems:
        raise RosterFileError(problems)
    return rows
