"""circuit breakers: their state, the attempts in their window, and the jobs they hold

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from redrive.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("job_type", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("cool_down_seconds", sa.Float, nullable=False),
        sa.Column("probe_job_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "breaker_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_breaker_attempts_window", "breaker_attempts", ["job_type", "stage", "key", "at"])
    op.create_table(
        "breaker_waiters",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
    )
    op.create_index("ix_breaker_waiters_breaker", "breaker_waiters", ["job_type", "stage", "key", "since"])


def downgrade() -> None:
    op.drop_table("breaker_waiters")
    op.drop_table("breaker_attempts")
    op.drop_table("breakers")
