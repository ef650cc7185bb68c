"""welfare_item.key: an imported item's key, so re-importing its file updates it instead of adding it again

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("welfare_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.create_index(batch_op.f("ix_welfare_item_key"), ["key"], unique=True)


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("welfare_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_welfare_item_key"))
        batch_op.drop_column("key")
