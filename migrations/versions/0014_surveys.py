"""surveys: surveys, members' progress, participation (who responded) apart from responses and answers (random
ids, no member and no time when anonymous; SQLite stores those two WITHOUT ROWID)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:28:32.388556
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("intro", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("results_public", sa.Boolean(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("opens_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closes_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("invited_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint("closes_at > opens_at", name="ck_survey_window"),
        sa.CheckConstraint("points >= 0", name="ck_survey_points_nonneg"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("survey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_closes_at"), ["closes_at"], unique=False)

    op.create_table(
        "survey_participation",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["survey.id"],
        ),
        sa.PrimaryKeyConstraint("survey_id", "member_id"),
    )
    op.create_table(
        "survey_progress",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("unit_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("age_band", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["survey.id"],
        ),
        sa.PrimaryKeyConstraint("survey_id", "member_id"),
    )
    op.create_table(
        "survey_response",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("unit_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("age_band", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["survey.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("survey_id", "member_id", name="uq_survey_response_member"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("survey_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_response_survey_id"), ["survey_id"], unique=False)

    op.create_table(
        "survey_answer",
        sa.Column("response_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("question", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_response.id"],
        ),
        sa.PrimaryKeyConstraint("response_id", "question", "item"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_table("survey_answer")
    with op.batch_alter_table("survey_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_response_survey_id"))

    op.drop_table("survey_response")
    op.drop_table("survey_progress")
    op.drop_table("survey_participation")
    with op.batch_alter_table("survey", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_closes_at"))

    op.drop_table("survey")
