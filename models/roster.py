"""Reading a member roster file (CSV) with line-precise errors."""

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
