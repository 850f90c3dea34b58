"""Job counts per tenant, type and status, kept by database triggers on `jobs`, so a listing's counts
read a few rows instead of scanning the tenant's jobs.

The triggers run in the transaction of every insert, delete and status change of a job row (from
the projection, a retry's claim, maintenance, the repair), so the counts are exact under any
concurrency: there is no second writer to forget. Each (tenant, type, status) is split over
`SHARDS` rows by the job id's last character, so concurrent transactions of one tenant seldom wait
on the same counter row.
"""

from __future__ import annotations

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


def create_triggers_sql(dialect: str) -> list[str]:
    """The statements that create the counting triggers on `jobs` for `dialect`."""
    changed = (
        "OLD.status IS DISTINCT FROM NEW.status OR OLD.tenant_id <> NEW.tenant_id OR OLD.type <> NEW.type"
    )
    if dialect == "sqlite":
        changed = changed.replace("IS DISTINCT FROM", "IS NOT")
        return [
            f"CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN {_bump('NEW', 1, dialect)} END",
            f"CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN {_bump('OLD', -1, dialect)} END",
            "CREATE TRIGGER jobs_count_update AFTER UPDATE OF status, tenant_id, type ON jobs "
            f"WHEN {changed} BEGIN {_bump('OLD', -1, dialect)} {_bump('NEW', 1, dialect)} END",
        ]
    return [
        f"""CREATE FUNCTION redrive_count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_bump("OLD", -1, dialect)} END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_bump("NEW", 1, dialect)} END IF;
  RETURN NULL;
END $$""",
        "CREATE TRIGGER jobs_count_insert_delete AFTER INSERT OR DELETE ON jobs "
        "FOR EACH ROW EXECUTE FUNCTION redrive_count_jobs()",
        f"CREATE TRIGGER jobs_count_update AFTER UPDATE OF status, tenant_id, type ON jobs "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION redrive_count_jobs()",
    ]


def drop_triggers_sql(dialect: str) -> list[str]:
    """The statements that remove them."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS jobs_count_{what}" for what in ("insert", "delete", "update")]
    return [
        "DROP TRIGGER IF EXISTS jobs_count_insert_delete ON jobs",
        "DROP TRIGGER IF EXISTS jobs_count_update ON jobs",
        "DROP FUNCTION IF EXISTS redrive_count_jobs()",
    ]


def rebuild_counts_sql(dialect: str) -> str:
    """Count every job row into `job_counts` (empty): for the migration, and after a bulk load made
    with the triggers off."""
    return (
        "INSERT INTO job_counts (tenant_id, type, status, shard, n) "
        f"SELECT tenant_id, type, status, {_shard('jobs', dialect)}, count(*) FROM jobs "
        "GROUP BY 1, 2, 3, 4"
    )


GROUP_KEY = ("app_id", "fingerprint", "type", "stage", "error_type")


def _bump_group(row: str, sign: int) -> str:
    pending = f"{sign} * (CASE WHEN {row}.replayed_at IS NULL THEN 1 ELSE 0 END)"
    values = ", ".join(f"{row}.{column}" for column in GROUP_KEY)
    return (
        f"INSERT INTO dead_letter_groups ({', '.join(GROUP_KEY)}, pending) VALUES ({values}, {pending}) "
        "ON CONFLICT (app_id, fingerprint) "
        "DO UPDATE SET pending = dead_letter_groups.pending + excluded.pending;"
    )


def create_group_triggers_sql(dialect: str) -> list[str]:
    """The statements that keep `dead_letter_groups.pending` (entries not replayed, per tenant and
    fingerprint) in step with `dead_letters`, in the same transaction as each change."""
    changed = (
        "(OLD.replayed_at IS NULL) <> (NEW.replayed_at IS NULL) "
        "OR OLD.fingerprint <> NEW.fingerprint OR OLD.app_id <> NEW.app_id"
    )
    if dialect == "sqlite":
        on = "ON dead_letters BEGIN"
        return [
            f"CREATE TRIGGER dead_letters_group_insert AFTER INSERT {on} {_bump_group('NEW', 1)} END",
            f"CREATE TRIGGER dead_letters_group_delete AFTER DELETE {on} {_bump_group('OLD', -1)} END",
            "CREATE TRIGGER dead_letters_group_update AFTER UPDATE OF replayed_at, fingerprint, app_id "
            f"ON dead_letters WHEN {changed} BEGIN {_bump_group('OLD', -1)} {_bump_group('NEW', 1)} END",
        ]
    return [
        f"""CREATE FUNCTION redrive_group_dead_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_bump_group("OLD", -1)} END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_bump_group("NEW", 1)} END IF;
  RETURN NULL;
END $$""",
        "CREATE TRIGGER dead_letters_group_insert_delete AFTER INSERT OR DELETE ON dead_letters "
        "FOR EACH ROW EXECUTE FUNCTION redrive_group_dead_letters()",
        "CREATE TRIGGER dead_letters_group_update AFTER UPDATE OF replayed_at, fingerprint, app_id "
        f"ON dead_letters FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION redrive_group_dead_letters()",
    ]


def drop_group_triggers_sql(dialect: str) -> list[str]:
    """The statements that remove them."""
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS dead_letters_group_{what}" for what in ("insert", "delete", "update")
        ]
    return [
        "DROP TRIGGER IF EXISTS dead_letters_group_insert_delete ON dead_letters",
        "DROP TRIGGER IF EXISTS dead_letters_group_update ON dead_letters",
        "DROP FUNCTION IF EXISTS redrive_group_dead_letters()",
    ]


def rebuild_groups_sql() -> str:
    """Count every dead letter into `dead_letter_groups` (empty)."""
    key = ", ".join(GROUP_KEY)
    return (
        f"INSERT INTO dead_letter_groups ({key}, pending) SELECT app_id, fingerprint, min(type), min(stage), "
        "min(error_type), sum(CASE WHEN replayed_at IS NULL THEN 1 ELSE 0 END) FROM dead_letters "
        "GROUP BY app_id, fingerprint"
    )
