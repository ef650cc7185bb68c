"""Fixtures: configuration, SQLite and PostgreSQL databases, the offline bot and chat clients."""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")

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


def _admin_sql(statement: str) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session", autouse=True)
def pg_database() -> Iterator[None]:
    """Create this run's PostgreSQL database (dropped at the end)."""
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
