"""a partial index on the jobs waiting for a retry, by type and stage: an opening breaker finds the
ones to pause without reading every tenant's jobs

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RETRYING = sa.text("status = 'retrying'")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_retrying", "jobs", ["type", "stage"], sqlite_where=RETRYING, postgresql_where=RETRYING
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_retrying", table_name="jobs")
