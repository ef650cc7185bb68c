"""broadcast (recurring runs as child rows), broadcast_ack, broadcast_mute; outbox rows that copy a stored message

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:12:06.139714
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("source_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("source_message_id", sa.BigInteger(), nullable=False),
        sa.Column("media", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("ack", sa.Boolean(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("mandatory", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("send_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("repeat", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("repeat_until", sa.Date(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("skipped_blocked", sa.Integer(), nullable=False),
        sa.Column("progress_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("progress_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("queued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'paused', 'sending', 'done', 'cancelled', 'discarded')",
            name="ck_broadcast_status_known",
        ),
        sa.CheckConstraint("recipients >= 0 AND skipped_blocked >= 0", name="ck_broadcast_counts_nonneg"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["broadcast.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcast_author_telegram_id"), ["author_telegram_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_send_at"), ["send_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_status"), ["status"], unique=False)

    op.create_table(
        "broadcast_ack",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "member_id"),
    )
    with op.batch_alter_table("broadcast_ack", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcast_ack_member_id"), ["member_id"], unique=False)

    op.create_table(
        "broadcast_mute",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("member_id", "category"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy_from_chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("copy_message_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("copy_message_id")
        batch_op.drop_column("copy_from_chat_id")

    op.drop_table("broadcast_mute")
    with op.batch_alter_table("broadcast_ack", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_ack_member_id"))

    op.drop_table("broadcast_ack")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_status"))
        batch_op.drop_index(batch_op.f("ix_broadcast_send_at"))
        batch_op.drop_index(batch_op.f("ix_broadcast_parent_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_author_telegram_id"))

    op.drop_table("broadcast")
