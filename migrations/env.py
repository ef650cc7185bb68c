"""Alembic environment: the project's sync drivers (pysqlite / psycopg 3), batch mode for SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

import models
from models.db import sync_url

config = context.config
target_metadata = models.metadata


def database_url() -> str:
    """The URL passed in by bot.py, or the one the configuration names, with the project's sync driver."""
    url = config.attributes.get("database_url")
    if not url:
        from config import load_config

        url = load_config().database_url
    return sync_url(url)


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (alembic upgrade --sql)."""
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on one connection."""
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database; reuses a connection handed in by tests."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    engine = create_engine(database_url(), poolclass=NullPool)
    with engine.connect() as connection:
        do_run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
