"""Welfare items from a file (`python bot.py import-welfare FILE`): TOML or CSV, with line-precise errors.

Every problem in the file is reported as (line, problem key, detail) and nothing is imported unless
every item is good. Times are in the organisation's time zone unless they carry an offset
(2026-06-18T12:00:00+08:00). Items are published at once (a lottery gets its secret seed) unless
`draft` is true. Modes may be written in English or Chinese: first_come 抢福利, lottery 抽签,
universal 普惠, group_buy 团购.

Importing a file again does not add its items twice. Each item has a key: the `key` field when the file
gives one (at most 64 characters, unique in the file), otherwise one derived from its title and opening
time (so changing either of those makes it a new item; give items a key to edit them by re-importing).
An item already imported with the same key is updated if it has not opened yet (a draft is published
unless `draft` is true; a published item stays published), and left alone once it has opened, ended or
been cancelled; each is reported. `python bot.py import-welfare --dry-run FILE` shows what would change
and writes nothing.

TOML: one [[item]] table per item.

    [[item]]
    key = "2026-dragon-boat"            # optional: the item's key for re-imports (default: title + opens_at)
    title = "端午节粽子礼盒"             # required, at most 60 characters
    mode = "first_come"                 # required: first_come | lottery | universal | group_buy
    cost = 50                           # points, 0 = free (default 0)
    stock = 200                         # first_come: items; lottery: prizes (both required);
                                        # universal: optional total cap; group_buy: optional places
    per_member_limit = 2                # first_come only, 1..20 (default 1)
    opens_at = 2026-06-18T12:00:00      # required
    closes_at = 2026-06-20T18:00:00     # required, after opens_at (group_buy: the deadline)
    redeem_by = 2026-06-30T18:00:00     # optional, after closes_at: vouchers expire then
    units = ["i801", "i802"]            # optional: only these units (default: every unit)
    owner_unit = "i801"                 # optional: whose cadres manage it (one of units; default: bureau)
    threshold = 20                      # group_buy only, required there: members needed
    description = "每位会员限领一份"      # optional, at most 1000 characters
    pickup = "工会办公室 302，工作日 9:00-17:00"   # optional, at most 300 characters
    draft = false                       # optional: true keeps it as a draft

CSV: a header row, then one item per row. Columns (English or Chinese header, any order):
key 标识, title 标题, mode 模式, cost 积分, stock 库存, per_member_limit 每人限领, opens_at 开始时间,
closes_at 结束时间, redeem_by 兑换截止, units 单位 (codes separated by spaces, ";" or "|"),
owner_unit 所属单位, threshold 成团人数, description 说明, pickup 领取方式, draft 草稿 (true/false, 是/否).
Times as "2026-06-18 12:00". Empty cells take the default.

Problem keys: syntax, empty_file, no_items, missing_columns, unknown_key, bad_text, bad_number,
bad_time, bad_bool, bad_units, bad_key, duplicate_key, and the draft checks of models.welfare.check_draft:
missing, too_long, bad_mode, out_of_range, first_come_only, above_stock, group_buy_only, before_open, before_close,
unknown_unit, not_in_units, in_past. The detail names the field (and the offending value).
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import audit
from models.clock import FIRST_YEAR, LAST_YEAR
from models.members import Actor
from models.welfare import (
    ItemDraft,
    ItemStatus,
    Mode,
    Phase,
    WelfareItem,
    WelfareItemUnit,
    as_utc,
    check_draft,
    draft_of,
    known_units,
    normalize_draft,
    phase_of,
    publish,
    store_item,
    update_item,
)

KEYS = (
    "key",
    "title",
    "mode",
    "cost",
    "stock",
    "per_member_limit",
    "opens_at",
    "closes_at",
    "redeem_by",
    "units",
    "owner_unit",
    "threshold",
    "description",
    "pickup",
    "draft",
)
CSV_HEADERS = {
    "key": ("key", "标识"),
    "title": ("title", "标题"),
    "mode": ("mode", "模式"),
    "cost": ("cost", "积分"),
    "stock": ("stock", "库存"),
    "per_member_limit": ("per_member_limit", "limit", "每人限领"),
    "opens_at": ("opens_at", "开始时间"),
    "closes_at": ("closes_at", "结束时间"),
    "redeem_by": ("redeem_by", "兑换截止"),
    "units": ("units", "单位"),
    "owner_unit": ("owner_unit", "所属单位"),
    "threshold": ("threshold", "成团人数"),
    "description": ("description", "说明"),
    "pickup": ("pickup", "领取方式"),
    "draft": ("draft", "草稿"),
}
CSV_REQUIRED = ("title", "mode", "opens_at", "closes_at")
MODE_NAMES = {
    "first_come": Mode.FIRST_COME,
    "抢福利": Mode.FIRST_COME,
    "lottery": Mode.LOTTERY,
    "抽签": Mode.LOTTERY,
    "universal": Mode.UNIVERSAL,
    "普惠": Mode.UNIVERSAL,
    "group_buy": Mode.GROUP_BUY,
    "团购": Mode.GROUP_BUY,
}
TRUE_WORDS = {"true", "yes", "1", "是"}
FALSE_WORDS = {"false", "no", "0", "否", ""}
UNIT_SEPARATORS = re.compile(r"[\s;|,、]+")
# Stands in for a time that could not be read, so the other checks can still run.
STAND_IN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
TOML_ERROR_LINE = re.compile(r"at line (\d+)")
TOML_ITEM_HEADER = re.compile(r"^\[\[\s*item\s*\]\]")
TOML_KEY = re.compile(r"^(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")

# A key given in the file; derived keys ("auto:" and 32 hex digits) fit the column too.
KEY_MAX = 64
DERIVED_KEY_PREFIX = "auto:"
# The draft fields a re-import compares and may change (a photo added in the bot is kept: files have none).
COMPARED_FIELDS = tuple(f.name for f in fields(ItemDraft) if f.name not in ("photo_file_id", "keep_draft", "line"))

Problem = tuple[int, str, str]


@dataclass(frozen=True)
class ImportDraft(ItemDraft):
    """An item read from a file: the draft plus the key the file gives ("" when none: item_key derives one)."""

    key: str = ""


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    # Already opened, ended or cancelled: a file no longer changes it.
    STARTED = "started"


@dataclass(frozen=True)
class PlannedItem:
    """What an import does (or did) with one item of the file."""

    line: int
    title: str
    key: str
    action: Action
    item_id: int | None
    # For updates: the fields that change ("status" when a draft gets published).
    changed: tuple[str, ...] = ()


class WelfareFileError(Exception):
    """The file cannot be imported; `problems` lists (line, problem key, detail) for the message templates."""

    def __init__(self, problems: list[Problem]) -> None:
        """Keep the problems sorted by line."""
        problems = sorted(problems, key=lambda p: p[0])
        super().__init__("; ".join(f"line {line}: {key} {detail}" for line, key, detail in problems))
        self.problems = problems


def _detail(field: str, value: object = "") -> str:
    """'field' or 'field: value' for a problem's detail."""
    return f"{field}: {value}" if value not in ("", None) else field


def _parse_time(value: Any, tz: ZoneInfo) -> datetime:
    """A TOML datetime or a text time as an aware UTC datetime; ValueError when it is not a date and time."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= len("2026-06-18"):
            raise ValueError("a time of day is needed")
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        raise ValueError("not a date and time")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        # Year 1 would overflow when moved to UTC (OverflowError, not a problem report).
        raise ValueError("year out of range")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return as_utc(value)


def _parse_int(value: Any) -> int:
    """A TOML integer or digits in text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    raise ValueError("not a number")


def _build(
    raw: dict[str, Any], line_of: Callable[[str], int], tz: ZoneInfo, units: set[str]
) -> list[Problem] | ImportDraft:
    """One item's values (TOML types or CSV text; None = absent) as a draft, or its problems."""
    problems: list[Problem] = []
    failed: set[str] = set()

    def bad(field: str, key: str, value: object = "") -> None:
        """Record a problem with a field that could not be read."""
        problems.append((line_of(field), key, _detail(field, value)))
        failed.add(field)

    def text(field: str) -> str:
        """A text value ('' when absent)."""
        value = raw.get(field)
        if value is None:
            return ""
        if not isinstance(value, str):
            bad(field, "bad_text", value)
            return ""
        return value

    def number(field: str, default: int | None) -> int | None:
        """An integer value (`default` when absent)."""
        value = raw.get(field)
        if value is None or value == "":
            return default
        try:
            return _parse_int(value)
        except ValueError:
            bad(field, "bad_number", value)
            return default

    def moment(field: str, required: bool) -> datetime | None:
        """A time value as aware UTC (None when absent)."""
        value = raw.get(field)
        if value is None or value == "":
            if required:
                bad(field, "missing")
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            bad(field, "bad_time", value)
            return None
        try:
            return _parse_time(value, tz)
        except ValueError:
            bad(field, "bad_time", value)
            return None

    mode_text = text("mode").strip()
    if not mode_text:
        bad("mode", "missing")
    mode = MODE_NAMES.get(mode_text.lower(), mode_text)
    cost = number("cost", 0)
    stock = number("stock", None)
    limit = number("per_member_limit", 1)
    threshold = number("threshold", None)
    opens_at = moment("opens_at", True)
    closes_at = moment("closes_at", True)
    redeem_by = moment("redeem_by", False)
    unit_value = raw.get("units")
    item_units: tuple[str, ...] = ()
    if isinstance(unit_value, str):
        item_units = tuple(u.lower() for u in UNIT_SEPARATORS.split(unit_value.strip()) if u)
    elif isinstance(unit_value, list) and all(isinstance(u, str) for u in unit_value):
        item_units = tuple(u.strip().lower() for u in unit_value if u.strip())
    elif unit_value is not None:
        bad("units", "bad_units", unit_value)
    owner = text("owner_unit").strip().lower() or None
    keep_draft = False
    draft_value = raw.get("draft")
    if isinstance(draft_value, bool):
        keep_draft = draft_value
    elif isinstance(draft_value, str) and draft_value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        keep_draft = draft_value.strip().lower() in TRUE_WORDS
    elif draft_value is not None:
        bad("draft", "bad_bool", draft_value)
    title, description, pickup = text("title"), text("description"), text("pickup")
    key = " ".join(text("key").split())
    if len(key) > KEY_MAX:
        bad("key", "bad_key", key[:KEY_MAX] + "…")
    elif key.startswith(DERIVED_KEY_PREFIX):
        bad("key", "bad_key", key)
    # Fields that could not be read get stand-ins, so the draft checks still report every other problem.
    start = opens_at or STAND_IN_TIME
    draft = ImportDraft(
        key=key,
        title=title,
        mode=mode,
        opens_at=start,
        closes_at=closes_at or start + timedelta(days=1),
        cost=cost if cost is not None else 0,
        stock=stock,
        per_member_limit=limit if limit is not None else 1,
        description=description,
        pickup=pickup,
        redeem_by=redeem_by,
        units=item_units,
        threshold=threshold,
        owner_unit=owner,
        keep_draft=keep_draft,
        line=line_of(""),
    )
    draft = normalize_draft(draft)
    if opens_at is None:
        failed.add("closes_at")
    if closes_at is None:
        failed.add("redeem_by")
    for field, problem, detail in check_draft(draft, units):
        if field not in failed:
            problems.append((line_of(field), problem, _detail(field, detail)))
    return problems or draft


def _toml_key_lines(text: str) -> tuple[list[int], list[dict[str, int]], dict[str, int]]:
    """Where each [[item]] starts and on which line each of its keys (and each top-level key) is written."""
    starts: list[int] = []
    item_keys: list[dict[str, int]] = []
    top: dict[str, int] = {}
    open_quote: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if open_quote is not None:
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        if TOML_ITEM_HEADER.match(line):
            starts.append(number)
            item_keys.append({})
            continue
        if line.startswith("["):
            top.setdefault(line.strip("[] "), number)
            continue
        match = TOML_KEY.match(line)
        if match is None:
            continue
        key = match.group(1).strip("\"'")
        (item_keys[-1] if item_keys else top).setdefault(key, number)
        rest = line[match.end() :]
        for quote in ('"""', "'''"):
            if rest.count(quote) % 2 == 1:
                open_quote = quote
    return starts, item_keys, top


def _parse_toml(text: str, tz: ZoneInfo, units: set[str]) -> tuple[list[ImportDraft], list[Problem]]:
    """Drafts and problems from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = TOML_ERROR_LINE.search(str(exc))
        return [], [(int(found.group(1)) if found else 1, "syntax", str(exc).split(" (at line")[0])]
    starts, item_keys, top = _toml_key_lines(text)
    problems: list[Problem] = []
    for key in data:
        if key != "item":
            problems.append((top.get(key, 1), "unknown_key", key))
    items = data.get("item")
    if not isinstance(items, list) or not items:
        problems.append((1, "no_items", ""))
        return [], problems
    drafts: list[ImportDraft] = []
    for index, raw in enumerate(items):
        start = starts[index] if index < len(starts) else 1
        keys = item_keys[index] if index < len(item_keys) else {}

        def line_of(field: str, start: int = start, keys: dict[str, int] = keys) -> int:
            """The line a field is written on (the item's first line when not written)."""
            return keys.get(field, start)

        if not isinstance(raw, dict):
            problems.append((start, "syntax", "item"))
            continue
        for key in raw:
            if key not in KEYS:
                problems.append((line_of(key), "unknown_key", key))
        built = _build(raw, line_of, tz, units)
        if isinstance(built, ImportDraft):
            drafts.append(built)
        else:
            problems.extend(built)
    return drafts, problems


def _parse_csv(text: str, tz: ZoneInfo, units: set[str]) -> tuple[list[ImportDraft], list[Problem]]:
    """Drafts and problems from CSV text (line numbers count physical lines)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [(1, "empty_file", "")]
    except csv.Error as exc:
        return [], [(1, "syntax", str(exc))]
    index: dict[str, int] = {}
    problems: list[Problem] = []
    for position, name in enumerate(header):
        key = next((k for k, names in CSV_HEADERS.items() if name in names), None)
        if key is None:
            if name:
                problems.append((1, "unknown_key", name))
        else:
            index[key] = position
    missing = [k for k in CSV_REQUIRED if k not in index]
    if missing:
        problems.append((1, "missing_columns", ", ".join(missing)))
    if problems:
        return [], problems
    drafts: list[ImportDraft] = []
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((start, "syntax", str(exc)))
            break
        last_line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        raw = {key: (record[i] if i < len(record) else None) for key, i in index.items()}
        raw = {key: (value if value is None or value.strip() else None) for key, value in raw.items()}
        built = _build(raw, lambda _field, start=start: start, tz, units)
        if isinstance(built, ImportDraft):
            drafts.append(built)
        else:
            problems.extend(built)
    if not drafts and not problems:
        problems.append((1, "no_items", ""))
    return drafts, problems


def item_key(draft: ItemDraft) -> str:
    """The key given in the file, or one derived from the normalised title and the opening time (UTC)."""
    given = getattr(draft, "key", "")
    if given:
        return given
    title = " ".join(draft.title.split())
    opens = as_utc(draft.opens_at).isoformat() if draft.opens_at.tzinfo else draft.opens_at.isoformat()
    digest = hashlib.sha256(f"{title}\n{opens}".encode()).hexdigest()[:32]
    return f"{DERIVED_KEY_PREFIX}{digest}"


def _duplicate_keys(drafts: Iterable[ItemDraft]) -> list[Problem]:
    """Items of one file that share a key (the later one is reported, naming the earlier line)."""
    first: dict[str, int] = {}
    problems: list[Problem] = []
    for draft in drafts:
        key = item_key(draft)
        if key in first:
            shown = key if not key.startswith(DERIVED_KEY_PREFIX) else "title + opens_at"
            problems.append((draft.line, "duplicate_key", f"{shown} = line {first[key]}"))
        else:
            first[key] = draft.line
    return problems


def parse_welfare_file(
    text: str, fmt: str, unit_codes: Iterable[str], tz: ZoneInfo, now: datetime | None = None
) -> list[ImportDraft]:
    """Read a TOML or CSV welfare file; raises WelfareFileError listing every problem with its line.

    With `now`, an item to publish whose window has ended is a problem too (import_welfare checks that against
    the database instead, where an item imported before and now over is left alone rather than refused).
    """
    text = text.lstrip("\ufeff")
    units = set(unit_codes)
    if not text.strip():
        raise WelfareFileError([(1, "empty_file", "")])
    if fmt == "toml":
        drafts, problems = _parse_toml(text, tz, units)
    elif fmt == "csv":
        drafts, problems = _parse_csv(text, tz, units)
    else:
        raise ValueError(f"unknown welfare file format {fmt!r}")
    problems.extend(_duplicate_keys(drafts))
    if now is not None:
        problems.extend(_late(drafts, as_utc(now)))
    if problems:
        raise WelfareFileError(problems)
    return drafts


def _late(drafts: Iterable[ItemDraft], now: datetime) -> list[Problem]:
    """Items to publish whose window has already ended."""
    return [(d.line, "in_past", "closes_at") for d in drafts if not d.keep_draft and d.closes_at <= now]


def _checked(session: Session, drafts: Iterable[ItemDraft]) -> list[ItemDraft]:
    """The drafts normalised and checked against the units in the database; WelfareFileError otherwise."""
    known = known_units(session)
    normalized = [normalize_draft(d) for d in drafts]
    problems: list[Problem] = [
        (d.line, key, _detail(field, detail)) for d in normalized for field, key, detail in check_draft(d, known)
    ]
    problems.extend(_duplicate_keys(normalized))
    if problems:
        raise WelfareFileError(problems)
    return normalized


def _units_by_item(session: Session, item_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The units each item is offered to (empty: every unit)."""
    units: dict[int, list[str]] = {}
    query = select(WelfareItemUnit).where(col(WelfareItemUnit.item_id).in_(list(item_ids)))
    for row in session.exec(query):
        units.setdefault(row.item_id, []).append(row.unit_code)
    return {item_id: tuple(sorted(codes)) for item_id, codes in units.items()}


def _plan(session: Session, drafts: list[ItemDraft], now: datetime) -> list[PlannedItem]:
    """Match each checked draft to the item imported before with its key, and decide what to do with it."""
    keys = [item_key(d) for d in drafts]
    existing = {item.key: item for item in session.exec(select(WelfareItem).where(col(WelfareItem.key).in_(keys)))}
    units = _units_by_item(session, [item.id for item in existing.values()])
    plan: list[PlannedItem] = []
    for draft, key in zip(drafts, keys, strict=True):
        item = existing.get(key)
        if item is None:
            plan.append(PlannedItem(draft.line, draft.title, key, Action.CREATE, None))
            continue
        if phase_of(item, now) not in (Phase.DRAFT, Phase.UPCOMING):
            plan.append(PlannedItem(draft.line, draft.title, key, Action.STARTED, item.id))
            continue
        stored = draft_of(item, units.get(item.id, ()))
        changed = [name for name in COMPARED_FIELDS if getattr(stored, name) != getattr(draft, name)]
        if item.status == ItemStatus.DRAFT and not draft.keep_draft:
            changed.append("status")
        action = Action.UPDATE if changed else Action.UNCHANGED
        plan.append(PlannedItem(draft.line, draft.title, key, action, item.id, tuple(changed)))
    late = {d.line for d in drafts if not d.keep_draft and d.closes_at <= now}
    problems = [(p.line, "in_past", "closes_at") for p in plan if p.line in late and p.action != Action.STARTED]
    if problems:
        raise WelfareFileError(problems)
    return plan


def plan_new(drafts: list[ItemDraft], now: datetime) -> list[PlannedItem]:
    """What importing these drafts into an empty database would do (`--dry-run` before the first import)."""
    problems = _late(drafts, as_utc(now))
    if problems:
        raise WelfareFileError(problems)
    return [PlannedItem(d.line, d.title, item_key(d), Action.CREATE, None) for d in drafts]


def plan_import(session: Session, drafts: list[ItemDraft], now: datetime) -> list[PlannedItem]:
    """What importing these drafts would do, item by item; reads only (`--dry-run`)."""
    return _plan(session, _checked(session, drafts), as_utc(now))


def import_welfare(
    session: Session, drafts: list[ItemDraft], actor_telegram_id: int, now: datetime
) -> list[PlannedItem]:
    """Create new items, update those not opened yet, leave started ones alone; all or nothing, in file order."""
    now = as_utc(now)
    normalized = _checked(session, drafts)
    plan = _plan(session, normalized, now)
    # The file stands for the bureau, as a bureau admin creating the items in the bot would.
    bureau = Actor(actor_telegram_id, None, True, frozenset({None}), frozenset())
    done: list[PlannedItem] = []
    for draft, planned in zip(normalized, plan, strict=True):
        if planned.action == Action.CREATE:
            status = ItemStatus.DRAFT if draft.keep_draft else ItemStatus.PUBLISHED
            item = store_item(session, draft, draft.owner_unit, actor_telegram_id, now, status)
            item.key = planned.key
            session.flush()
            planned = replace(planned, item_id=item.id)
        elif planned.action == Action.UPDATE:
            assert planned.item_id is not None
            current = session.get(WelfareItem, planned.item_id)
            assert current is not None
            update_item(session, bureau, planned.item_id, replace(draft, photo_file_id=current.photo_file_id), now)
            if "status" in planned.changed:
                publish(session, bureau, planned.item_id, now)
        done.append(planned)
    counts = {action.value: sum(p.action == action for p in done) for action in Action}
    audit.record(session, actor_telegram_id, "welfare_import", "", count=len(done), **counts)
    return done


def import_items(session: Session, drafts: list[ItemDraft], actor_telegram_id: int, now: datetime) -> list[int]:
    """Store parsed drafts (published unless marked draft); all or nothing. Returns the items' ids in file order."""
    return [p.item_id for p in import_welfare(session, drafts, actor_telegram_id, now) if p.item_id is not None]
