"""The job projection's one writer: every write of `jobs`, `job_stages`, `stage_failures` and
`job_actions` is built here, and nowhere else (a test holds the rest of the code to it).

Two ways in:
- the hot path, a job's status and stage progress: build rows with `job_created`, `stage_started`,
  `stage_finished` or `status_changed` and hand them to the process's `GroupCommit`, which batches
  concurrent writes into one transaction;
- writes that share a transaction with other tables (a dead-letter insert, a retry's claim and
  requeue, maintenance's archival): `ProjectionWrites(session)`.

Every write to a job's row names the run it comes from (`same_run`), and none brings a finished
run back to life (`not_final`), so late or racing writes change nothing they should not.
Reads are in `redrive.store.jobs`.
"""

from redrive.store.projection.group_commit import GroupCommit, Write
from redrive.store.projection.statements import (
    FINAL,
    LOST,
    Row,
    StageStart,
    attempt_lost,
    job_created,
    stage_finished,
    stage_started,
    status_changed,
)
from redrive.store.projection.writes import RETRYABLE, ProjectionWrites

__all__ = [
    "FINAL",
    "LOST",
    "RETRYABLE",
    "GroupCommit",
    "ProjectionWrites",
    "Row",
    "StageStart",
    "Write",
    "attempt_lost",
    "job_created",
    "stage_finished",
    "stage_started",
    "status_changed",
]
