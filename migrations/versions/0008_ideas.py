"""ideas (创客空间): idea, idea_upvote (once per member), idea_comment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:26:11.923934
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "idea",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("photo_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("decline_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("upvotes >= 0", name="ck_idea_upvotes_nonneg"),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["unit.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("idea", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idea_author_id"), ["author_id"], unique=False)
        batch_op.create_index("ix_idea_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_idea_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "idea_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idea_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["idea_id"],
            ["idea.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("idea_comment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idea_comment_idea_id"), ["idea_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_idea_comment_member_id"), ["member_id"], unique=False)

    op.create_table(
        "idea_upvote",
        sa.Column("idea_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["idea_id"],
            ["idea.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("idea_id", "member_id"),
    )
    with op.batch_alter_table("idea_upvote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idea_upvote_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("idea_upvote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idea_upvote_member_id"))

    op.drop_table("idea_upvote")
    with op.batch_alter_table("idea_comment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idea_comment_member_id"))
        batch_op.drop_index(batch_op.f("ix_idea_comment_idea_id"))

    op.drop_table("idea_comment")
    with op.batch_alter_table("idea", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idea_unit_code"))
        batch_op.drop_index("ix_idea_status_created")
        batch_op.drop_index(batch_op.f("ix_idea_author_id"))

    op.drop_table("idea")
