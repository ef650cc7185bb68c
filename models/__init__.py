"""SQLModel tables and the operations on them: plain Python, no Telegram.

Importing this package registers every table on SQLModel.metadata (used by alembic and tests).
"""

from sqlmodel import SQLModel

from models import (  # noqa: F401  (tables without dependencies first)
    activity,
    audit,
    broadcasts,
    care,
    clubs,
    feedback,
    flows,
    ideas,
    inbox,
    insight,
    likes,
    members,
    outbox,
    points,
    quizzes,
    reading,
    runs,
    schedule,
    show,
    surveys,
    welfare,
    workshops,
)

metadata = SQLModel.metadata
