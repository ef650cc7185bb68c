"""outbox: a priority lane (personal notices and vouchers before bulk messages)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["status", "priority", "not_before", "id"], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["status", "not_before", "id"], unique=False)
        batch_op.drop_column("priority")
