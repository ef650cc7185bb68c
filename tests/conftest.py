"""Fixtures: configuration, SQLite and PostgreSQL databases, the offline bot and chat clients."""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")

import inspect
import tomllib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from bot import build_application, on_startup
from config import PROJECT_DIR, Config, parse_config
from models import members
from models.clock import FrozenClock
from models.db import Database
from scheduled.outbox import OutboxSender, bot_sender
from tests.harness import ChatClient, FakeBotAPI, FakeClock

PG_SERVER = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Each pytest run gets its own database, so parallel runs (and developers) never share tables.
PG_DATABASE = f"gongshe_test_{os.getpid()}"
PG_URL = PG_SERVER.rsplit("/", 1)[0] + "/" + PG_DATABASE
ADMIN_ID = 1000
# The moment the test bot lives in (noon in Beijing); no test depends on the real date.
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
TOKEN = "123456:TEST-TOKEN"


# Without a PostgreSQL server the SQLite half of the suite still runs and the PostgreSQL tests are skipped, loudly;
# CI (.ci/run) sets GONGSHE_REQUIRE_PG=1, which makes a missing server a failure instead.
REQUIRE_PG = os.environ.get("GONGSHE_REQUIRE_PG") == "1"
PG_CONNECT_TIMEOUT_SECONDS = 3
PG_FIXTURES = frozenset({"pg_bot", "pg_db"})
_pg_problem: list[str] = []
_SKIPPED_PG = pytest.StashKey[int]()


def _admin_sql(statement: str) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute(statement)


def _pg_unavailable() -> str:
    """Why PostgreSQL cannot be used ('' when it can); asked once per run."""
    if not _pg_problem:
        try:
            _admin_sql("SELECT 1")
            _pg_problem.append("")
        except psycopg.Error as exc:
            _pg_problem.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return _pg_problem[0]


def _mentions_pg(fn: object) -> bool:
    """A test or fixture whose own code connects to the test server by URL."""
    try:
        source = inspect.getsource(fn)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return "PG_URL" in source or "PG_SERVER" in source


def needs_pg(item: pytest.Item) -> bool:
    """Whether a test uses PostgreSQL: the postgresql half of db_url, a pg_* fixture, or PG_URL/PG_SERVER directly."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        return True
    if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    if _mentions_pg(getattr(item, "function", None)):
        return True
    fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(_mentions_pg(d.func) for defs in fixtures.values() for d in defs)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the PostgreSQL tests when the server is unreachable (fail the run instead under GONGSHE_REQUIRE_PG=1)."""
    pg_items = [item for item in items if needs_pg(item)]
    if not pg_items:
        return
    problem = _pg_unavailable()
    if not problem:
        return
    if REQUIRE_PG:
        raise pytest.UsageError(
            f"PostgreSQL at {PG_SERVER} is unreachable ({problem}) and GONGSHE_REQUIRE_PG=1: "
            f"{len(pg_items)} tests need it. Start it (CI: .ci/run does) or set TEST_PG_URL."
        )
    marker = pytest.mark.skip(reason=f"PostgreSQL unreachable at {PG_SERVER}: {problem}")
    for item in pg_items:
        item.add_marker(marker)
    config.stash[_SKIPPED_PG] = len(pg_items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say loudly, at the very end, that the PostgreSQL half of the suite did not run."""
    skipped = config.stash.get(_SKIPPED_PG, 0)
    if skipped:
        terminalreporter.section("PostgreSQL tests NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"WARNING: {skipped} PostgreSQL tests were SKIPPED: no server at {PG_SERVER} ({_pg_unavailable()}).",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(
            "Only SQLite was tested. Start PostgreSQL (or set TEST_PG_URL) to run them; CI (.ci/run) requires it.",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session", autouse=True)
def pg_database() -> Iterator[None]:
    """Create this run's PostgreSQL database (dropped at the end); nothing when the server is unreachable."""
    if _pg_unavailable():
        yield
        return
    _admin_sql(f'CREATE DATABASE "{PG_DATABASE}"')
    yield
    _admin_sql(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def make_config(database_url: str, tmp_path: Path, **env: str) -> Config:
    """The shipped config.toml, pointed at a test database and with one bootstrap admin."""
    raw = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))
    raw["admins"] = {"telegram_ids": [ADMIN_ID]}
    raw["backup"]["directory"] = str(tmp_path / "backups")
    return parse_config(raw, {"BOT_TOKEN": TOKEN, "DATABASE_URL": database_url, **env})


def fresh_schema(db: Database) -> None:
    """Empty database with the current tables (PostgreSQL: drop everything from earlier tests)."""
    with db.write_engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        SQLModel.metadata.create_all(conn)


def seed_units(db: Database, config: Config) -> None:
    """Insert the configured units."""
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))


def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file database in the test's directory."""
    return f"sqlite:///{tmp_path / 'gongshe.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases: every test using this runs twice."""
    return sqlite_url(tmp_path) if request.param == "sqlite" else PG_URL


@pytest.fixture
async def db(db_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database (SQLite file or PostgreSQL) with the schema and the units."""
    database = Database(db_url)
    fresh_schema(database)
    seed_units(database, make_config(db_url, tmp_path))
    yield database
    await database.dispose()


@pytest.fixture
async def pg_db(tmp_path: Path) -> AsyncIterator[Database]:
    """PostgreSQL only: a fresh schema with the units (for tests of several OS processes on one database)."""
    database = Database(PG_URL)
    fresh_schema(database)
    seed_units(database, make_config(PG_URL, tmp_path))
    yield database
    await database.dispose()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The shipped configuration on a SQLite file in tmp_path."""
    return make_config(sqlite_url(tmp_path), tmp_path)


class Bot:
    """The real Application on the fake Bot API, and a way to make users."""

    def __init__(self, app, api: FakeBotAPI, config: Config, db: Database) -> None:
        self.app, self.api, self.config, self.db = app, api, config, db
        self.clock: FrozenClock = app.bot_data["services"].clock

    def user(self, user_id: int, language_code: str | None = "zh", chat_id: int | None = None) -> ChatClient:
        """A Telegram user (private chat unless chat_id says a group)."""
        return ChatClient(self.app, self.api, user_id, f"User{user_id}", language_code, chat_id)


async def start_bot(config: Config) -> AsyncIterator[Bot]:
    """Build, initialise and start up the bot on a fresh database (shared by the bot fixtures)."""
    db = Database(config.database_url)
    fresh_schema(db)
    api = FakeBotAPI()
    app = build_application(config, request=api, db=db, scheduler=False, clock=FrozenClock(NOW))
    await app.initialize()
    await on_startup(app)
    # The outbox as the bot runs it, on fake time: the chat clients run it after every update (harness.settle).
    app.bot_data["test_outbox"] = OutboxSender(db, bot_sender(app.bot), config.outbox, clock=FakeClock())
    yield Bot(app, api, config, db)
    await app.shutdown()
    await db.dispose()
    assert not api.unexpected, f"unexpected Bot API calls: {api.unexpected}"


@pytest.fixture
async def bot(config: Config) -> AsyncIterator[Bot]:
    """The bot on SQLite."""
    async for b in start_bot(config):
        yield b


@pytest.fixture
async def pg_bot(tmp_path: Path) -> AsyncIterator[Bot]:
    """The bot on PostgreSQL."""
    async for b in start_bot(make_config(PG_URL, tmp_path)):
        yield b


async def make_member(
    db: Database,
    telegram_id: int,
    unit: str = "i801",
    employee_no: str | None = None,
    name: str | None = None,
    *,
    language: str = "zh",
    role: members.Role | None = None,
    role_unit: str | None = "same",
) -> members.Member:
    """A verified member created directly (for tests about something other than registration)."""
    with db.writing() as session:
        member = members.Member(
            telegram_id=telegram_id,
            unit_code=unit,
            employee_no=employee_no or f"E{telegram_id}",
            name=name or f"成员{telegram_id}",
            status=members.Status.VERIFIED,
            language=language,
        )
        session.add(member)
        session.flush()
        if role is not None:
            scope = unit if role_unit == "same" else role_unit
            session.add(members.RoleGrant(member_id=member.id, role=role, unit_code=scope))
    return member
