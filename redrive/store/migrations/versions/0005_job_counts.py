"""job counts kept by triggers, and indexes that serve the status filters and the dead-letter list

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from redrive.store.counts import create_triggers_sql, drop_triggers_sql, rebuild_counts_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    op.execute(rebuild_counts_sql(dialect))
    for statement in create_triggers_sql(dialect):
        op.execute(statement)
    op.drop_index("ix_jobs_tenant_status", table_name="jobs")
    op.create_index("ix_jobs_tenant_status_created", "jobs", ["tenant_id", "status", "created_at", "id"])
    op.create_index("ix_jobs_tenant_status_finished", "jobs", ["tenant_id", "status", "finished_at"])
    op.create_index("ix_dead_letters_app_dlq", "dead_letters", ["app_id", "dlq_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_app_dlq", table_name="dead_letters")
    op.drop_index("ix_jobs_tenant_status_finished", table_name="jobs")
    op.drop_index("ix_jobs_tenant_status_created", table_name="jobs")
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"])
    for statement in drop_triggers_sql(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("job_counts")
