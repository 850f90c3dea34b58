"""Job counts per tenant, type and status, kept by database triggers on `jobs`, so a listing's counts
read a few rows instead of scanning the tenant's jobs.

The triggers run in the transaction of every insert, delete and status change of a job row (from
the projection, a retry's claim, maintenance, the repair), so the counts are exact under any
concurrency: there is no second writer to forget. Each (tenant, type, status) is split over
`SHARDS` rows by the job id's last character, so concurrent transactions of one tenant seldom wait
on the same counter row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SHARDS = 16


def _shard(row: str, dialect: str) -> str:
    last = f"unicode(substr({row}.id, -1))" if dialect == "sqlite" else f"ascii(right({row}.id, 1))"
    return f"({last} % {SHARDS})"


def _bump(row: str, delta: int, dialect: str) -> str:
    sign = "+" if delta > 0 else "-"
    return (
        "INSERT INTO job_counts (tenant_id, type, status, shard, n) "
        f"VALUES ({row}.tenant_id, {row}.type, {row}.status, {_shard(row, dialect)}, {delta}) "
        f"ON CONFLICT (tenant_id, type, status, shard) DO UPDATE SET n = job_counts.n {sign} 1;"
    )


@dataclass(frozen=True)
class _Counter:
    """Counts kept by triggers on `table`: `bump(row, ±1, dialect)` adds a row's contribution; the
    update trigger fires when one of `watched` changes as `changed` (PostgreSQL's syntax) says."""

    table: str
    name: str
    watched: str
    changed: str
    bump: Callable[[str, int, str], str]


def _create(counter: _Counter, dialect: str) -> list[str]:
    bump, name, table = counter.bump, counter.name, counter.table
    if dialect == "sqlite":
        changed = counter.changed.replace("IS DISTINCT FROM", "IS NOT")
        return [
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {bump('NEW', 1, dialect)} END",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {bump('OLD', -1, dialect)} END",
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {counter.watched} ON {table} "
            f"WHEN {changed} BEGIN {bump('OLD', -1, dialect)} {bump('NEW', 1, dialect)} END",
        ]
    return [
        f"""CREATE FUNCTION redrive_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {bump("OLD", -1, dialect)} END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {bump("NEW", 1, dialect)} END IF;
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER {name}_insert_delete AFTER INSERT OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION redrive_{name}()",
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {counter.watched} ON {table} "
        f"FOR EACH ROW WHEN ({counter.changed}) EXECUTE FUNCTION redrive_{name}()",
    ]


def _drop(counter: _Counter, dialect: str) -> list[str]:
    name, table = counter.name, counter.table
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}_{what}" for what in ("insert", "delete", "update")]
    return [
        f"DROP TRIGGER IF EXISTS {name}_insert_delete ON {table}",
        f"DROP TRIGGER IF EXISTS {name}_update ON {table}",
        f"DROP FUNCTION IF EXISTS redrive_{name}()",
    ]


JOB_COUNTER = _Counter(
    table="jobs",
    name="count_jobs",
    watched="status, tenant_id, type",
    changed="OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.tenant_id <> NEW.tenant_id OR OLD.type <> NEW.type",
    bump=_bump,
)


def create_triggers_sql(dialect: str) -> list[str]:
    """The statements that create the counting triggers on `jobs` for `dialect`."""
    return _create(JOB_COUNTER, dialect)


def drop_triggers_sql(dialect: str) -> list[str]:
    """The statements that remove them."""
    return _drop(JOB_COUNTER, dialect)


def rebuild_counts_sql(dialect: str) -> str:
    """Count every job row into `job_counts` (empty): for the migration, and after a bulk load made
    with the triggers off."""
    return (
        "INSERT INTO job_counts (tenant_id, type, status, shard, n) "
        f"SELECT tenant_id, type, status, {_shard('jobs', dialect)}, count(*) FROM jobs "
        "GROUP BY 1, 2, 3, 4"
    )


GROUP_KEY = ("app_id", "fingerprint", "type", "stage", "error_type")


def _bump_group(row: str, sign: int, _dialect: str) -> str:
    pending = f"{sign} * (CASE WHEN {row}.replayed_at IS NULL THEN 1 ELSE 0 END)"
    values = ", ".join(f"{row}.{column}" for column in GROUP_KEY)
    return (
        f"INSERT INTO dead_letter_groups ({', '.join(GROUP_KEY)}, pending) VALUES ({values}, {pending}) "
        "ON CONFLICT (app_id, fingerprint) "
        "DO UPDATE SET pending = dead_letter_groups.pending + excluded.pending;"
    )


GROUP_COUNTER = _Counter(
    table="dead_letters",
    name="group_dead_letters",
    watched="replayed_at, fingerprint, app_id",
    changed="(OLD.replayed_at IS NULL) <> (NEW.replayed_at IS NULL) "
    "OR OLD.fingerprint <> NEW.fingerprint OR OLD.app_id <> NEW.app_id",
    bump=_bump_group,
)


def create_group_triggers_sql(dialect: str) -> list[str]:
    """The statements that keep `dead_letter_groups.pending` (entries not replayed, per tenant and
    fingerprint) in step with `dead_letters`, in the same transaction as each change."""
    return _create(GROUP_COUNTER, dialect)


def drop_group_triggers_sql(dialect: str) -> list[str]:
    """The statements that remove them."""
    return _drop(GROUP_COUNTER, dialect)


def rebuild_groups_sql() -> str:
    """Count every dead letter into `dead_letter_groups` (empty)."""
    key = ", ".join(GROUP_KEY)
    return (
        f"INSERT INTO dead_letter_groups ({key}, pending) SELECT app_id, fingerprint, min(type), min(stage), "
        "min(error_type), sum(CASE WHEN replayed_at IS NULL THEN 1 ELSE 0 END) FROM dead_letters "
        "GROUP BY app_id, fingerprint"
    )
