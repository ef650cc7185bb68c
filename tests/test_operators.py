"""What a union's IT person meets on a fresh machine: start-up errors, imports run twice, backups, logs, packaging.

The command-line tests run the real `python bot.py` (the helpers of tests/test_e2e_process.py) and compare what it
prints with the labels in messages/, in the configured language, so they follow the wording instead of copying it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from packaging.requirements import Requirement
from sqlmodel import Session, col, select

import bot
from config import PROJECT_DIR, ConfigError, parse_config, sync_url
from messages import Renderer
from models import members, points, welfare
from models.audit import AuditEntry
from models.clock import utcnow
from models.db import Database
from models.members import Member, RosterEntry, RosterRemoval, RosterRow, Status
from models.points import LedgerEntry
from models.welfare import ItemStatus, WelfareItem
from models.welfare.importing import Action, WelfareFileError, import_welfare, parse_welfare_file, plan_import
from scheduled.backup import backup_sqlite
from tests.botapi_server import BOT_USERNAME, BotAPIServer
from tests.conftest import NOW, PG_URL, _admin_sql
from tests.test_e2e_process import TOKEN, BotProcess, bot_env, run_cli

RENDERER = Renderer()
SHANGHAI = ZoneInfo("Asia/Shanghai")
RAW_CONFIG = (PROJECT_DIR / "config.toml").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))
UNITS = [u["code"] for u in tomllib.loads(RAW_CONFIG)["units"]]
ROSTER = "unit_code,employee_no,name,birth_year\ni801,R-1,张三,1980\ni801,R-2,李四,\ni802,R-3,王五,1990\n"
OPEN_LOTTERY = """\
[[item]]
title = "音乐会门票"
mode = "lottery"
cost = 10
stock = 2
opens_at = 2020-01-01T00:00:00
closes_at = 2099-01-01T00:00:00
"""


def say(label: str, language: str = "zh", /, **context: object) -> str:
    """A command-line text as the process prints it in that language."""
    return RENDERER.label(language, label, **context)


def config_file(tmp_path: Path, language: str = "zh", database_url: str | None = None) -> Path:
    """The shipped config.toml in another language, with backups (and optionally the database) in tmp_path."""
    text = RAW_CONFIG.replace('default_language = "zh"', f'default_language = "{language}"')
    text = text.replace('directory = "data/backups"', f'directory = "{(tmp_path / "backups").as_posix()}"')
    if database_url is not None:
        text = text.replace('url = "sqlite:///data/gongshe.db"', f'url = "{database_url}"')
    assert f'default_language = "{language}"' in text and str(tmp_path / "backups") in text
    path = tmp_path / f"config-{language}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_path(tmp_path: Path) -> Path:
    """The SQLite file bot_env points the processes at."""
    return tmp_path / "e2e.db"


def query(tmp_path: Path, sql: str) -> list[tuple]:
    """Rows of a query on the processes' SQLite file."""
    with closing(sqlite3.connect(db_path(tmp_path))) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def api() -> Iterator[BotAPIServer]:
    """A running stand-in for the Bot API that knows only TOKEN."""
    server = BotAPIServer(TOKEN)
    server.start()
    yield server
    server.stop()


# --- start-up errors: one line each, in the configured language, never the token or a password -------------------


def test_no_token_is_one_line_pointing_to_botfather(tmp_path: Path) -> None:
    result = run_cli([], bot_env(tmp_path, BOT_TOKEN=""))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [say("cli_no_token")]
    assert "@BotFather" in result.stderr


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_token_telegram_rejects_is_one_line_without_the_token(
    api: BotAPIServer, tmp_path: Path, language: str
) -> None:
    wrong = "999999:WRONG-TOKEN-NEVER-SHOWN"
    config = config_file(tmp_path, language)
    env = bot_env(tmp_path, BOT_TOKEN=wrong, BOT_API_BASE_URL=api.base_url, GONGSHE_CONFIG=str(config))
    assert run_cli(["migrate"], env).returncode == 0
    result = run_cli([], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [say("cli_token_rejected", language, url=api.base_url)]
    assert "WRONG-TOKEN" not in result.stdout + result.stderr
    assert [c["status"] for c in api.calls_of("getMe")] == [401]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_unreachable_bot_api_is_named_without_the_token(tmp_path: Path, language: str) -> None:
    base = f"http://127.0.0.1:{closed_port()}/bot"
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, BOT_API_BASE_URL=base, GONGSHE_CONFIG=str(config_file(tmp_path, language)))
    assert run_cli(["migrate"], env).returncode == 0
    result = run_cli([], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.splitlines() == [say("cli_api_unreachable", language, url=base)]
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_webhook_address_telegram_refuses_is_one_line_and_a_clean_exit(
    api: BotAPIServer, tmp_path: Path, language: str
) -> None:
    """It ended in a traceback: Telegram refuses a plain-http address, so say which and why, and stop cleanly."""
    hook = f"http://user:pa55@127.0.0.1:{closed_port()}/hook?secret=1"
    env = bot_env(
        tmp_path,
        BOT_TOKEN=TOKEN,
        BOT_API_BASE_URL=api.base_url,
        GONGSHE_CONFIG=str(config_file(tmp_path, language)),
        WEBHOOK_URL=hook,
    )
    assert run_cli(["migrate"], env).returncode == 0
    result = run_cli([], env)
    assert result.returncode == 2, result.stdout + result.stderr
    reason = "Bad webhook: an https url must be provided for webhook"  # as PTB words the Bot API's answer
    shown = hook.replace("user:pa55@", "").removesuffix("?secret=1")
    assert result.stderr.splitlines()[-1] == say("cli_webhook_refused", language, url=shown, reason=reason)
    assert "Traceback" not in result.stderr and "pa55" not in result.stderr
    assert api.webhook_url == ""


def test_the_bot_api_url_is_shown_without_token_or_password(tmp_path: Path) -> None:
    config = make_config_with(tmp_path, BOT_API_BASE_URL="https://relay:pa55@tg.example.org/bot123456:SECRET/")
    assert bot._public_api_url(config) == "https://tg.example.org/bot<token>/"


def make_config_with(tmp_path: Path, **env: str):
    """The shipped configuration with these environment variables and a token that looks like a real one."""
    return parse_config(tomllib.loads(RAW_CONFIG), {"BOT_TOKEN": "123456:SECRET", **env}, tmp_path)


def test_a_database_url_with_another_driver_names_the_fix_without_the_password(tmp_path: Path) -> None:
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, DATABASE_URL="mysql://gongshe:s3cret@db.example/gongshe")
    result = run_cli([], env)
    assert result.returncode == 2
    line = say("cli_database_url_unsupported", key="DATABASE_URL", scheme="mysql")
    assert result.stderr.splitlines() == [line]
    assert "sqlite:///" in line and "postgresql://" in line
    assert "s3cret" not in result.stderr
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(RAW_CONFIG.replace("sqlite:///data/gongshe.db", "user:pw@host/db")), {})
    assert err.value.key == "database.url" and err.value.params == {"key": "database.url", "scheme": ""}
    assert "pw" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "driver_url"),
    [
        ("postgres://u@db/gongshe", "postgresql+psycopg://u@db/gongshe"),
        ("postgresql://u@db/gongshe", "postgresql+psycopg://u@db/gongshe"),
        ("sqlite:///data/gongshe.db", "sqlite:///data/gongshe.db"),
    ],
)
def test_database_url_accepts_postgres_postgresql_and_sqlite(url: str, driver_url: str) -> None:
    config = parse_config(tomllib.loads(RAW_CONFIG), {"DATABASE_URL": url})
    assert sync_url(url) == driver_url
    assert sync_url(config.database_url).split("://")[0] == driver_url.split("://")[0]


def test_a_postgres_scheme_url_migrates_a_real_database(tmp_path: Path) -> None:
    """On a database of its own: the shared test database holds tables made without alembic by other tests."""
    name = f"gongshe_scheme_{os.getpid()}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    try:
        url = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgres://", 1) + "/" + name
        result = run_cli(["migrate"], bot_env(tmp_path, DATABASE_URL=url))
        assert result.returncode == 0, result.stderr
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    port = closed_port()
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, DATABASE_URL=f"postgresql://gongshe:s3cret@127.0.0.1:{port}/union")
    result = run_cli([], env)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and f"postgresql gongshe@127.0.0.1:{port}/union" in lines[0], result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


# --- import-roster ------------------------------------------------------------------------------------------------


def test_a_missing_roster_file_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    result = run_cli(["import-roster", str(path)], bot_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [say("cli_file_missing", path=str(path))]
    assert not db_path(tmp_path).exists()


def test_a_roster_excel_saved_in_gbk_is_read(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(
        ROSTER.replace("unit_code,employee_no,name,birth_year", "单位代码,工号,姓名,出生年份").encode("gbk")
    )
    result = run_cli(["import-roster", str(path)], bot_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [say("cli_roster_done", added=3, updated=0, unchanged=0, verified=0)]
    assert sorted(query(tmp_path, "SELECT name FROM roster")) == [("张三",), ("李四",), ("王五",)]


def test_a_roster_in_neither_encoding_says_how_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(b"unit_code,employee_no,name\ni801,R-1,\xff\xfe\x80\n")
    result = run_cli(["import-roster", str(path)], bot_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [say("cli_file_unreadable", path=str(path))]
    assert "UTF-8" in result.stderr


def test_importing_the_same_roster_again_reports_no_changes(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    env = bot_env(tmp_path)
    assert run_cli(["import-roster", str(path)], env).stdout.splitlines() == [
        say("cli_roster_done", added=3, updated=0, unchanged=0, verified=0)
    ]
    again = run_cli(["import-roster", str(path)], env)
    assert again.stdout.splitlines() == [say("cli_roster_done", added=0, updated=0, unchanged=3, verified=0)]
    path.write_text(ROSTER.replace("李四", "李 思"), encoding="utf-8")
    changed = run_cli(["import-roster", str(path)], env)
    assert changed.stdout.splitlines() == [say("cli_roster_done", added=0, updated=1, unchanged=2, verified=0)]


def test_remove_missing_shows_who_first_and_erases_them_only_with_yes(tmp_path: Path) -> None:
    env = bot_env(tmp_path)
    full = tmp_path / "full.csv"
    full.write_text(ROSTER, encoding="utf-8")
    assert run_cli(["import-roster", str(full)], env).returncode == 0
    # R-2 registered, was verified, has points and holds 10 of them on a lottery application.
    db = Database(f"sqlite:///{db_path(tmp_path)}")
    with db.writing() as session:
        member = Member(telegram_id=7301, unit_code="i801", employee_no="R-2", name="李四", status=Status.VERIFIED)
        session.add(member)
        session.flush()
        points.refund(session, member.id, 30, "test:gift", date(2026, 11, 28), "welcome gift")
        member_id = member.id
        lottery = parse_welfare_file(OPEN_LOTTERY, "toml", UNITS, SHANGHAI)
        (planned,) = import_welfare(session, lottery, 0, utcnow())
        welfare.apply_lottery(session, member, planned.item_id, utcnow(), SHANGHAI)
    assert query(tmp_path, f"SELECT balance FROM member WHERE id = {member_id}") == [(20,)]
    # A roster of i801 only: R-2 has left; i802 is not in the file and is left alone.
    smaller = tmp_path / "i801.csv"
    smaller.write_text("unit_code,employee_no,name,birth_year\ni801,R-1,张三,1980\n", encoding="utf-8")

    preview = run_cli(["import-roster", str(smaller), "--remove-missing"], env)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.splitlines() == [
        say("cli_roster_preview", added=0, updated=0, unchanged=1, removed=1),
        say("cli_roster_removal", unit="i801", employee_no="R-2", name="李四", member=True),
        say("cli_roster_confirm"),
    ]
    assert len(query(tmp_path, "SELECT * FROM roster")) == 3
    assert query(tmp_path, f"SELECT status, name FROM member WHERE id = {member_id}") == [("verified", "李四")]

    done = run_cli(["import-roster", str(smaller), "--remove-missing", "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        say("cli_roster_done", added=0, updated=0, unchanged=1, verified=0),
        say("cli_roster_removed", removed=1, erased=1),
    ]
    assert sorted(query(tmp_path, "SELECT unit_code, employee_no FROM roster")) == [("i801", "R-1"), ("i802", "R-3")]
    erased = query(
        tmp_path, f"SELECT status, name, employee_no, telegram_id, balance FROM member WHERE id = {member_id}"
    )
    assert erased == [("deleted", None, None, None, 30)], "the held points came back, as on a /me deletion"
    assert query(tmp_path, f"SELECT status FROM welfare_claim WHERE member_id = {member_id}") == [("cancelled",)]
    with db.reading() as session:
        assert points.ledger_sum(session, member_id) == 30
        assert len(session.exec(select(LedgerEntry).where(LedgerEntry.member_id == member_id)).all()) == 3
        actions = [(e.action, e.target) for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))]
        import_entry = session.exec(select(AuditEntry).where(AuditEntry.action == "import_roster")).all()[-1]
    assert ("erase_member", f"member:{member_id}") in actions
    assert import_entry.detail["removed"] == 1 and import_entry.detail["erased"] == 1


async def test_roster_imports_count_unchanged_rows_and_remove_only_within_the_files_units(db: Database) -> None:
    rows = [
        RosterRow("i801", "R-1", "张三", 1980),
        RosterRow("i801", "R-2", "李四", None),
        RosterRow("i802", "R-3", "王五", None),
    ]
    with db.writing() as session:
        first = members.import_roster(session, rows)
        verified = Member(telegram_id=7401, unit_code="i801", employee_no="R-2", name="李四", status=Status.VERIFIED)
        session.add(verified)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    with db.writing() as session:
        again = members.import_roster(session, rows)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)

    with db.reading() as session:
        preview, removals = members.preview_roster(session, rows[:1])
    assert removals == [RosterRemoval("i801", "R-2", "李四", verified.id)]
    assert (preview.unchanged, preview.removed, preview.erased) == (1, 1, 1)
    with db.reading() as session:
        assert len(session.exec(select(RosterEntry)).all()) == 3, "a preview writes nothing"

    erased: list[int] = []

    def erase(session: Session, member_id: int) -> None:
        """The account deletion the CLI passes in, recorded."""
        erased.append(member_id)
        members.erase_member(session, member_id)

    with db.writing() as session:
        removed = members.import_roster(session, rows[:1], remove_missing=True, erase=erase)
    assert (removed.unchanged, removed.removed, removed.erased) == (1, 1, 1)
    assert erased == [verified.id]
    with db.reading() as session:
        left = sorted((e.unit_code, e.employee_no) for e in session.exec(select(RosterEntry)))
        gone = session.get(Member, verified.id)
    assert left == [("i801", "R-1"), ("i802", "R-3")]
    assert gone.status == Status.DELETED and gone.name is None and gone.telegram_id is None


# --- import-welfare: keys, re-imports, --dry-run --------------------------------------------------------------------

# NOW is noon of 2026-11-28 in Beijing: the first item opens later, the second is open already.
WELFARE_V1 = """\
[[item]]
key = "zongzi-2026"
title = "端午粽子礼盒"
mode = "first_come"
cost = 30
stock = 100
opens_at = 2026-12-10T12:00:00
closes_at = 2026-12-12T18:00:00

[[item]]
title = "读书卡"
mode = "universal"
opens_at = 2026-11-20T09:00:00
closes_at = 2026-12-20T18:00:00

[[item]]
title = "电影票"
mode = "lottery"
stock = 5
opens_at = 2026-12-15T09:00:00
closes_at = 2026-12-16T09:00:00
draft = true
"""
# Cost changed on the item not open yet, cost changed on the open one, the draft is to be published now.
WELFARE_V2 = (
    WELFARE_V1.replace("cost = 30", "cost = 40")
    .replace('mode = "universal"', 'mode = "universal"\ncost = 5')
    .replace("draft = true\n", "")
)


async def test_reimporting_updates_items_not_open_yet_and_leaves_started_ones_alone(db: Database) -> None:
    with db.writing() as session:
        first = import_welfare(session, parse_welfare_file(WELFARE_V1, "toml", UNITS, SHANGHAI), 0, NOW)
    assert [p.action for p in first] == [Action.CREATE] * 3
    ids = [p.item_id for p in first]
    with db.writing() as session:
        again = import_welfare(session, parse_welfare_file(WELFARE_V1, "toml", UNITS, SHANGHAI), 0, NOW)
    assert [(p.action, p.item_id) for p in again] == [
        (Action.UNCHANGED, ids[0]),
        (Action.STARTED, ids[1]),
        (Action.UNCHANGED, ids[2]),
    ]

    changed = parse_welfare_file(WELFARE_V2, "toml", UNITS, SHANGHAI)
    with db.reading() as session:
        plan = plan_import(session, changed, NOW)
    assert [(p.action, p.changed) for p in plan] == [
        (Action.UPDATE, ("cost",)),
        (Action.STARTED, ()),
        (Action.UPDATE, ("status",)),
    ]
    with db.writing() as session:
        import_welfare(session, changed, 0, NOW)
    with db.reading() as session:
        items = session.exec(select(WelfareItem).order_by(col(WelfareItem.id))).all()
    assert [i.id for i in items] == ids, "a re-import never adds an item twice"
    assert [(i.cost, i.status) for i in items] == [(40, "published"), (0, "published"), (0, "published")]
    assert items[0].key == "zongzi-2026" and items[1].key.startswith("auto:")
    assert items[2].seed_hash is not None, "a lottery published by a re-import gets its committed seed"


async def test_an_item_imported_before_and_over_now_is_left_alone_not_refused(db: Database) -> None:
    with db.writing() as session:
        import_welfare(session, parse_welfare_file(WELFARE_V1, "toml", UNITS, SHANGHAI), 0, NOW)
    later = datetime(2026, 12, 13, 0, 0, tzinfo=UTC)  # the first item has closed
    drafts = parse_welfare_file(WELFARE_V1, "toml", UNITS, SHANGHAI)
    with db.writing() as session:
        plan = import_welfare(session, drafts, 0, later)
    assert [p.action for p in plan] == [Action.STARTED, Action.STARTED, Action.UNCHANGED]
    with db.reading() as session:
        assert session.exec(select(WelfareItem).where(WelfareItem.status == ItemStatus.PUBLISHED)).all()


def test_two_items_with_one_key_are_refused_by_line() -> None:
    appended_at = WELFARE_V1.count("\n") + 2  # after one blank line
    same_key = (
        WELFARE_V1 + '\n[[item]]\nkey = "zongzi-2026"\ntitle = "别的"\nmode = "universal"\n'
        "opens_at = 2026-12-10T12:00:00\ncloses_at = 2026-12-11T12:00:00\n"
    )
    with pytest.raises(WelfareFileError) as info:
        parse_welfare_file(same_key, "toml", UNITS, SHANGHAI)
    assert info.value.problems == [(appended_at, "duplicate_key", "zongzi-2026 = line 1")]
    # Without a key the title and the opening time are the key: the reading card (line 10) twice.
    reading_card = WELFARE_V1.split("\n\n")[1]
    with pytest.raises(WelfareFileError) as derived:
        parse_welfare_file(f"{WELFARE_V1}\n{reading_card}\n", "toml", UNITS, SHANGHAI)
    assert derived.value.problems == [(appended_at, "duplicate_key", "title + opens_at = line 10")]


WELFARE_FILE = """\
[[item]]
key = "dragon-boat"
title = "端午粽子礼盒"
mode = "first_come"
cost = 30
stock = 100
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-20T18:00:00

[[item]]
title = "音乐会门票"
mode = "抽签"
stock = 2
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-19T12:00:00
"""


def test_import_welfare_dry_run_writes_nothing_and_a_reimport_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "items.toml"
    path.write_text(WELFARE_FILE, encoding="utf-8")
    env = bot_env(tmp_path)
    titles = ["端午粽子礼盒", "音乐会门票"]

    dry = run_cli(["import-welfare", "--dry-run", str(path)], env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        say("cli_welfare_dry_run"),
        say("cli_welfare_plan_create", line=1, title=titles[0], id=None, fields=""),
        say("cli_welfare_plan_create", line=10, title=titles[1], id=None, fields=""),
        say("cli_welfare_plan_summary", created=2, updated=0, unchanged=0, started=0),
    ]
    assert not db_path(tmp_path).exists(), "--dry-run must not even create the database"

    assert run_cli(["import-welfare", str(path)], env).returncode == 0
    again = run_cli(["import-welfare", str(path)], env)
    assert again.stdout.splitlines() == [say("cli_welfare_summary", created=0, updated=0, unchanged=2, started=0)]
    assert query(tmp_path, "SELECT id, cost FROM welfare_item ORDER BY id") == [(1, 30), (2, 0)]

    path.write_text(WELFARE_FILE.replace("cost = 30", "cost = 45"), encoding="utf-8")
    dry = run_cli(["import-welfare", str(path), "--dry-run"], env)
    assert dry.stdout.splitlines() == [
        say("cli_welfare_dry_run"),
        say("cli_welfare_plan_update", line=1, title=titles[0], id=1, fields="cost"),
        say("cli_welfare_plan_unchanged", line=10, title=titles[1], id=2, fields=""),
        say("cli_welfare_plan_summary", created=0, updated=1, unchanged=1, started=0),
    ]
    assert query(tmp_path, "SELECT id, cost FROM welfare_item ORDER BY id") == [(1, 30), (2, 0)]
    done = run_cli(["import-welfare", str(path)], env)
    assert done.stdout.splitlines() == [
        say("cli_welfare_item_updated", line=1, title=titles[0], id=1, fields="cost"),
        say("cli_welfare_summary", created=0, updated=1, unchanged=1, started=0),
    ]
    assert query(tmp_path, "SELECT id, cost FROM welfare_item ORDER BY id") == [(1, 45), (2, 0)]


# --- every subcommand: --config and a --help that describes its file ---------------------------------------------

SUBCOMMANDS = (
    ["run"],
    ["migrate"],
    ["import-roster", "r.csv"],
    ["backup"],
    ["import-welfare", "w.toml"],
    ["verify-draw", "1"],
)


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda argv: argv[0])
def test_every_subcommand_takes_config_before_or_after_its_name(argv: list[str]) -> None:
    parser = bot.build_parser()
    assert parser.parse_args([*argv, "--config", "other.toml"]).config == Path("other.toml")
    assert parser.parse_args(["--config", "other.toml", *argv]).config == Path("other.toml")
    assert parser.parse_args(argv).config is None


def test_config_option_is_the_file_that_is_read(tmp_path: Path) -> None:
    target = tmp_path / "via-option.db"
    config = config_file(tmp_path, database_url=f"sqlite:///{target}")
    env = bot_env(tmp_path, DATABASE_URL="")  # empty: the file's database.url (and no .env can supply one)
    result = run_cli(["migrate", "--config", str(config)], env)
    assert result.returncode == 0, result.stderr
    assert target.exists() and not db_path(tmp_path).exists()


def test_the_import_commands_help_describes_the_file_format(tmp_path: Path) -> None:
    roster = run_cli(["import-roster", "--help"], bot_env(tmp_path))
    assert roster.returncode == 0
    assert all(word in roster.stdout for word in ("unit_code,employee_no,name", "GB18030", "--remove-missing", "--yes"))
    items = run_cli(["import-welfare", "--help"], bot_env(tmp_path))
    assert all(word in items.stdout for word in ("[[item]]", "key 标识", "opens_at", "--dry-run"))
    version = run_cli(["--version"], bot_env(tmp_path))
    assert version.stdout.strip() == f"Gongshe {PYPROJECT['project']['version']}"


# --- backups --------------------------------------------------------------------------------------------------------


def test_backups_are_named_in_local_time(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x)")
    at = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # already the 29th in Beijing
    target = backup_sqlite(source, tmp_path / "backups", keep=3, now=at, tz=SHANGHAI)
    assert target.name == "gongshe-20261129-003000.db"


def test_the_backup_command_names_its_copy_in_local_time_and_it_restores(tmp_path: Path) -> None:
    env = bot_env(tmp_path, GONGSHE_CONFIG=str(config_file(tmp_path)))
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert run_cli(["import-roster", str(roster)], env).returncode == 0
    before = datetime.now(SHANGHAI).replace(microsecond=0)
    result = run_cli(["backup"], env)
    after = datetime.now(SHANGHAI)
    assert result.returncode == 0, result.stderr
    (copy,) = (tmp_path / "backups").glob("gongshe-*.db")
    assert result.stdout.splitlines() == [say("cli_backup_done", path=str(copy))]
    stamp = datetime.strptime(copy.name, "gongshe-%Y%m%d-%H%M%S.db").replace(tzinfo=SHANGHAI)
    assert before <= stamp <= after

    # The README's restore: (bot stopped) copy the backup over the database, remove -wal/-shm, start.
    with closing(sqlite3.connect(db_path(tmp_path))) as conn, conn:
        conn.execute("DELETE FROM roster")
    assert query(tmp_path, "SELECT * FROM roster") == []
    shutil.copyfile(copy, db_path(tmp_path))
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path(tmp_path)}{suffix}").unlink(missing_ok=True)
    assert len(query(tmp_path, "SELECT * FROM roster")) == 3
    assert run_cli(["migrate"], env).returncode == 0


def test_backup_on_postgresql_prints_the_pg_dump_command_without_the_password(tmp_path: Path) -> None:
    result = run_cli(["backup"], bot_env(tmp_path, DATABASE_URL="postgresql://gongshe:s3cret@db.example:6543/union"))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    command = re.search(r"pg_dump --format=custom --file=gongshe-\d{8}-\d{6}\.dump \S+ \S+ \S+ union", lines[0])
    assert command is not None, lines
    assert "--host=db.example --port=6543 --username=gongshe union" in command.group(0)
    assert lines == [say("cli_backup_postgresql", command=command.group(0))]
    assert "s3cret" not in result.stderr


# --- logs -----------------------------------------------------------------------------------------------------------

RUNNING_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+08:00) INFO gongshe: Gongshe (?P<version>\S+) running: "
    r"bot @(?P<bot>\w+), (?P<mode>polling|webhook), database (?P<database>.+)$",
    re.MULTILINE,
)


def test_one_start_up_line_names_bot_mode_database_and_version(api: BotAPIServer, tmp_path: Path) -> None:
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, BOT_API_BASE_URL=api.base_url)
    process = BotProcess(api, env, tmp_path / "bot.log")
    try:
        process.until(lambda c: c["method"] == "getUpdates", "the first long poll", timeout=60)
        # The line follows the first poll closely; wait for it (not for a fixed time).
        deadline = time.monotonic() + 20
        while not RUNNING_LINE.search(process.output()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.stop() == 0
        output = process.output()
    finally:
        process.kill()
    (found,) = RUNNING_LINE.finditer(output)
    assert found["version"] == PYPROJECT["project"]["version"]
    assert (found["bot"], found["mode"], found["database"]) == (BOT_USERNAME, "polling", f"sqlite {db_path(tmp_path)}")
    stamps = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(\S*) ", output, re.MULTILINE)
    assert stamps and set(stamps) == {"+08:00"}, "every log line in the organisation's time zone"
    assert "apscheduler" not in output and TOKEN not in output


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Put the root logger and the quieted loggers back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in bot.QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_logs_are_in_local_time_without_a_line_per_scheduler_tick(fresh_logging: None) -> None:
    bot.setup_logging(SHANGHAI)
    bot.setup_logging(SHANGHAI)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "gongshe", False)]
    assert len(ours) == 1, "setting up twice leaves one handler"
    assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)

    def record(name: str, message: str) -> logging.LogRecord:
        """A log record made at NOW (noon in Beijing)."""
        made = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
        made.created = NOW.timestamp()
        return made

    assert ours[0].format(record("gongshe", "hello")) == "2026-11-28 12:00:00.000+08:00 INFO gongshe: hello"
    assert not ours[0].filter(record("alembic.runtime.migration", "Context impl SQLiteImpl."))
    assert ours[0].filter(record("alembic.runtime.migration", "Running upgrade 0004 -> 0005, welfare key"))


def test_the_version_is_the_projects() -> None:
    assert bot.app_version() == PYPROJECT["project"]["version"]


# --- packaging and dependencies --------------------------------------------------------------------------------------

RUNTIME_DIRS = ("buttons", "handlers", "messages", "migrations", "models", "scheduled")


def runtime_files() -> list[Path]:
    """Every Python file of the running bot (not tests, not benchmarks)."""
    files = [p for p in PROJECT_DIR.glob("*.py")]
    for folder in RUNTIME_DIRS:
        files.extend((PROJECT_DIR / folder).rglob("*.py"))
    return files


def test_pip_install_gets_every_module_template_and_migration() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["py-modules"]) == {p.stem for p in PROJECT_DIR.glob("*.py")}
    packages = set(setuptools["packages"])
    for folder in RUNTIME_DIRS:
        for sub in [PROJECT_DIR / folder, *(d for d in (PROJECT_DIR / folder).rglob("*") if d.is_dir())]:
            if any(sub.glob("*.py")) and sub.name != "__pycache__":
                assert ".".join(sub.relative_to(PROJECT_DIR).parts) in packages, sub
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    shipped = {p for pattern in data["messages"] for p in (PROJECT_DIR / "messages").glob(pattern)}
    wanted = {p for p in (PROJECT_DIR / "messages").rglob("*") if p.suffix in (".j2", ".toml")}
    assert wanted and wanted <= shipped
    assert (PROJECT_DIR / "migrations" / data["migrations"][0]).exists()
    assert PYPROJECT["project"]["scripts"]["gongshe"] == "bot:main"
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"


def _third_party_imports() -> set[str]:
    """Top-level names the running bot imports that are neither the standard library nor the project."""
    local = {p.stem for p in PROJECT_DIR.glob("*.py")} | set(RUNTIME_DIRS)
    names: set[str] = set()
    for path in runtime_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in local and n != "__future__"}


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install (with their extras), as installed here."""
    seen: dict[str, set[str]] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen and set(req.extras) <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | set(req.extras)
        for text in importlib.metadata.requires(req.name) or []:
            sub = Requirement(text)
            extras = seen[name] or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return set(seen)


def test_every_runtime_import_is_a_declared_dependency() -> None:
    declared = _closure(PYPROJECT["project"]["dependencies"])
    providers = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"telegram", "sqlmodel", "qrcode", "tornado", "psycopg"} <= imports
    for name in imports:
        dists = {d.lower().replace("_", "-") for d in providers.get(name, [])}
        assert dists & declared, f"{name} (from {dists}) is imported but not declared in pyproject.toml"


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pairs = [line.split("==") for line in lines if line and not line.startswith(("#", "-r"))]
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_production_lock_has_no_test_tools_and_matches_pyproject() -> None:
    production = _pins(PROJECT_DIR / "requirements.lock")
    dev_lock = (PROJECT_DIR / "requirements-dev.lock").read_text(encoding="utf-8")
    dev = _pins(PROJECT_DIR / "requirements-dev.lock")
    tools = {"pytest", "pytest-asyncio", "hypothesis", "ruff"}
    assert not tools & set(production) and tools <= set(dev)
    assert "-r requirements.lock" in dev_lock.splitlines()
    assert set(production) == _closure(PYPROJECT["project"]["dependencies"])
    for text in PYPROJECT["project"]["dependencies"]:
        req = Requirement(text)
        (spec,) = req.specifier
        assert spec.operator == "==" and production[req.name.lower()] == spec.version, text
    makefile = (PROJECT_DIR / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^\$\(STAMP\): requirements\.lock", makefile, re.MULTILINE)
    assert re.search(r"^run: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^test: \$\(DEV_STAMP\)$", makefile, re.MULTILINE)
    assert "-r requirements-dev.lock" in makefile


# --- the test suite without PostgreSQL, and CI --------------------------------------------------------------------


def test_without_postgresql_the_suite_skips_loudly_and_ci_fails_instead(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GONGSHE_REQUIRE_PG"}
    env["TEST_PG_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_migrations.py"]
    relaxed = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    skipped = re.search(r"WARNING: (\d+) PostgreSQL tests were SKIPPED", relaxed.stdout)
    assert skipped and int(skipped.group(1)) >= 1, relaxed.stdout
    assert "PostgreSQL tests NOT RUN" in relaxed.stdout and re.search(r"\d+ passed", relaxed.stdout)

    strict = subprocess.run(
        command, cwd=PROJECT_DIR, env={**env, "GONGSHE_REQUIRE_PG": "1"}, capture_output=True, text=True, timeout=300
    )
    assert strict.returncode != 0
    assert "GONGSHE_REQUIRE_PG=1" in strict.stdout + strict.stderr
    assert "GONGSHE_REQUIRE_PG=1" in (PROJECT_DIR / ".ci" / "run").read_text(encoding="utf-8")


# --- README, .env.example, deployment files -------------------------------------------------------------------------

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
DEPLOYMENT_FILES = (".env.example", "Dockerfile", "compose.yaml", "deploy/gongshe.service", "requirements-dev.lock")


def test_the_readme_names_only_files_that_are_in_the_repository() -> None:
    paths = set(re.findall(r"`([^`\s]*/[^`\s]*)`", README))
    paths |= set(re.findall(r"(?<![\w/.~-])((?:[\w.-]+/)+[\w.-]+\.(?:py|toml|j2|lock|ini|yaml|service))\b", README))
    # Paths: a file name with an extension, or a folder written with its trailing slash ("Asia/Shanghai" is not).
    looks_like_a_path = [p for p in paths if re.search(r"(\.\w+|/)$", p)]
    checked = {
        p.rstrip("/")
        for p in looks_like_a_path
        if not re.match(r"(/|~|\.\./|https?:|data/|[A-Za-z+]+://)", p) and not re.search(r"[<>{}*$…]", p)
    }
    # Files at the top, named without a folder; .env and .venv are made on the machine (cp .env.example, make).
    checked |= set(re.findall(r"`([^`\s/]+\.(?:toml|lock|yaml|yml|ini|md|py|service|example|cfg))`", README))
    checked |= set(re.findall(r"`(\.[\w.-]+)`", README)) - {".env", ".venv"}
    assert len(checked) > 10, checked
    missing = sorted(p for p in checked if not (PROJECT_DIR / p).exists())
    assert not missing, f"the README names files that are not in the repository: {missing}"
    for name in DEPLOYMENT_FILES:
        assert (PROJECT_DIR / name).exists() and name in README, name


def test_env_example_lists_every_environment_variable_the_bot_reads() -> None:
    read: set[str] = set()
    for path in runtime_files():
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"""(?:env|environ)(?:\.get)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']""", text))
    assert {"BOT_TOKEN", "DATABASE_URL", "WEBHOOK_SECRET", "GONGSHE_CONFIG"} <= read
    example = (PROJECT_DIR / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert read <= listed, f"not in .env.example: {sorted(read - listed)}"


def test_the_container_and_service_files_run_the_bot_as_the_readme_says() -> None:
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert "pip install -r requirements.lock" in dockerfile and "-r requirements-dev.lock" not in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["python", "bot\.py"', dockerfile, re.MULTILINE)
    compose = (PROJECT_DIR / "compose.yaml").read_text(encoding="utf-8")
    for needed in ("image: postgres:15", "healthcheck:", "restart: unless-stopped", "env_file:", "volumes:"):
        assert needed in compose, needed
    unit = (PROJECT_DIR / "deploy" / "gongshe.service").read_text(encoding="utf-8")
    for needed in ("ExecStart=", "Restart=on-failure", "RestartPreventExitStatus=2", "User=gongshe"):
        assert needed in unit, needed
