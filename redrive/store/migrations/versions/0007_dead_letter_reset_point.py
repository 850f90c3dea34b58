"""dead letters keep the reset point their run recorded, so a replay needs no history read

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not a batch: on SQLite a batch rebuilds the table and loses the triggers that
# keep the pending groups' counts (SQLite drops a column in place since 3.35).
def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("reset_point", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("dead_letters", "reset_point")
