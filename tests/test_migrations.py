"""The migrations create exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import bot
import models
from models.db import Database
from tests.conftest import make_config


def _drop_everything(db: Database) -> None:
    with db.write_engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


def _diff(db: Database) -> list:
    with db.write_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"render_as_batch": True})
        return compare_metadata(context, models.metadata)


async def test_upgrade_to_head_matches_the_models(db_url, tmp_path):
    db = Database(db_url)
    _drop_everything(db)
    config = make_config(db_url, tmp_path)
    bot.upgrade_database(config)
    assert _diff(db) == []
    # Running it again is a no-op.
    bot.upgrade_database(config)
    with db.reading() as session:
        version = (session.exec(text("SELECT version_num FROM alembic_version"))).all()
    assert len(version) == 1
    await db.dispose()


def test_migrate_on_a_fresh_clone_creates_the_data_folder(tmp_path, monkeypatch):
    """`python bot.py migrate` (and so `make run`) works where the SQLite file's folder does not exist yet."""
    target = tmp_path / "fresh" / "data" / "gongshe.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    monkeypatch.setenv("BOT_TOKEN", "")
    assert bot.main(["migrate"]) == 0
    assert target.exists()
