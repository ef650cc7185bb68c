"""broadcasts posted into club groups (broadcast.groups, broadcast.pin) and outbox rows pinned once delivered

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 03:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.add_column(sa.Column("groups", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("pin", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("pin")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_column("pin")
        batch_op.drop_column("groups")
