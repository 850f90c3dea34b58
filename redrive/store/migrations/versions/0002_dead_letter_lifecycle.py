"""dead-letter lifecycle: fingerprints, replay chain, alerts, archive, operator actions, RLS

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from redrive.fingerprints import fingerprint
from redrive.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The API sets `redrive.tenant` per transaction; the worker and maintenance set '*'. Unset (NULL or
# '') matches nothing, so a query that forgot to say whose rows it wants gets none.
TENANT_POLICY = "current_setting('redrive.tenant', true) IN (app_id, '*')"


def upgrade() -> None:
    op.create_table(
        "job_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_job_actions_job", "job_actions", ["job_id", "at"])
    with op.batch_alter_table("dead_letters") as dead_letters:
        dead_letters.add_column(sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""))
        dead_letters.add_column(sa.Column("replay_of", sa.Uuid, nullable=True))
        dead_letters.add_column(sa.Column("replay_count", sa.Integer, nullable=False, server_default="0"))
        dead_letters.add_column(sa.Column("notified_at", UTCDateTime, nullable=True))
        dead_letters.add_column(sa.Column("archived_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("dead_letters") as dead_letters:
        dead_letters.alter_column("fingerprint", server_default=None)
        dead_letters.alter_column("replay_count", server_default=None)
    op.create_index("ix_dead_letters_request_id", "dead_letters", ["request_id"])
    op.create_index("ix_dead_letters_app_fingerprint", "dead_letters", ["app_id", "fingerprint", "dlq_at"])
    op.create_table(
        "alert_windows",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
        sa.Column("sample_job_id", sa.String(64), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('redrive.tenant', '*', true)")
    _backfill_fingerprints()
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            "ck_dead_letters_error_history_array", "dead_letters", "jsonb_typeof(error_history) = 'array'"
        )
        op.execute("ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE dead_letters FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY dead_letters_tenant ON dead_letters USING ({TENANT_POLICY}) "
            f"WITH CHECK ({TENANT_POLICY})"
        )


def _backfill_fingerprints() -> None:
    table = sa.table(
        "dead_letters",
        sa.column("id", sa.Uuid),
        sa.column("type", sa.String),
        sa.column("stage", sa.String),
        sa.column("error_type", sa.String),
        sa.column("error_message", sa.String),
        sa.column("fingerprint", sa.String),
    )
    bind = op.get_bind()
    columns = (table.c.id, table.c.type, table.c.stage, table.c.error_type, table.c.error_message)
    for row in bind.execute(sa.select(*columns)).all():
        key = fingerprint(row.type, row.stage, row.error_type, row.error_message)
        bind.execute(sa.update(table).where(table.c.id == row.id).values(fingerprint=key))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS dead_letters_tenant ON dead_letters")
        op.execute("ALTER TABLE dead_letters NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE dead_letters DISABLE ROW LEVEL SECURITY")
        op.drop_constraint("ck_dead_letters_error_history_array", "dead_letters", type_="check")
    op.drop_table("alert_windows")
    op.drop_index("ix_dead_letters_app_fingerprint", "dead_letters")
    op.drop_index("ix_dead_letters_request_id", "dead_letters")
    with op.batch_alter_table("dead_letters") as dead_letters:
        for column in ("archived_at", "notified_at", "replay_count", "replay_of", "fingerprint"):
            dead_letters.drop_column(column)
    op.drop_table("job_actions")
