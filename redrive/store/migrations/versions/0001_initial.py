"""jobs, job_stages, stage_failures and dead_letters

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from redrive.store.types import JSONDocument, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PENDING = sa.text("replayed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=True),
        sa.Column("next_retry_at", UTCDateTime, nullable=True),
        sa.Column("error_reason", sa.String(32), nullable=True),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("error_message", sa.String, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_at", "id"])
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"])
    op.create_table(
        "job_stages",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("executions", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "stage_failures",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(64), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("failed_at", UTCDateTime, nullable=False),
        sa.Column("next_retry_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("original_job_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.Column("error_reason", sa.String(32), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("error_message", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_history", JSONDocument, nullable=False),
        sa.Column("dlq_at", UTCDateTime, nullable=False),
        sa.Column("replayed_at", UTCDateTime, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.UniqueConstraint("original_job_id", "run_id", name="uq_dead_letters_job_run"),
    )
    op.create_index("ix_dead_letters_original_job_id", "dead_letters", ["original_job_id"])
    op.create_index(
        "ix_dead_letters_pending_type",
        "dead_letters",
        ["app_id", "type", "dlq_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_dead_letters_pending_age",
        "dead_letters",
        ["dlq_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("stage_failures")
    op.drop_table("job_stages")
    op.drop_table("jobs")
