"""SQLModel tables and the operations on them: plain Python, no Telegram.

Importing this package registers every table on SQLModel.metadata (used by alembic and tests).
"""

from sqlmodel import SQLModel

from models import (  # noqa: F401  (tables without dependencies first)
    audit,
    flows,
    inbox,
    members,
    outbox,
    points,
    schedule,
    surveys,
    welfare,
)

metadata = SQLModel.metadata
