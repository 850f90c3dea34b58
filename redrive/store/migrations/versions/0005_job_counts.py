"""job counts and pending dead-letter groups kept by triggers; indexes for the status filters and
the dead-letter list

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from redrive.store.counts import (
    create_group_triggers_sql,
    create_triggers_sql,
    drop_group_triggers_sql,
    drop_triggers_sql,
    rebuild_counts_sql,
    rebuild_groups_sql,
)

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
    op.create_table(
        "dead_letter_groups",
        sa.Column("app_id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("pending", sa.BigInteger, nullable=False),
    )
    op.execute(rebuild_groups_sql())
    for statement in create_group_triggers_sql(dialect):
        op.execute(statement)
    if dialect == "postgresql":  # as dead_letters: a session sees its tenant's groups only
        policy = "current_setting('redrive.tenant', true) IN (app_id, '*')"
        op.execute("ALTER TABLE dead_letter_groups ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE dead_letter_groups FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY dead_letter_groups_tenant ON dead_letter_groups "
            f"USING ({policy}) WITH CHECK ({policy})"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_group_triggers_sql(dialect):
        op.execute(statement)
    op.drop_table("dead_letter_groups")
    op.drop_index("ix_dead_letters_app_dlq", table_name="dead_letters")
    op.drop_index("ix_jobs_tenant_status_finished", table_name="jobs")
    op.drop_index("ix_jobs_tenant_status_created", table_name="jobs")
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"])
    for statement in drop_triggers_sql(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("job_counts")
