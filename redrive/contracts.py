"""What travels between the API, the workflow and the activities.

One frozen dataclass in, one out. These are recorded in Temporal histories: add fields only at the
end, with defaults, so that old histories still decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redrive.breaker_policy import Breaker
from redrive.jobtypes.registry import Stage
from redrive.status import ErrorReason, JobStatus

MAINTENANCE_WORKFLOW = "MaintenanceWorkflow"
"""Run by the maintenance schedule, which the worker creates by this name."""
SUPERSEDED_RUN_WORKFLOW = "SupersededRunWorkflow"
"""Deletes a dead run that a retry's reset left behind; started by the retry operation by name."""
RECORD_DEAD_LETTER = "record_dead_letter"
NOTIFY_DEAD_LETTER = "notify_dead_letter"
RECORD_STATUS = "record_status"
DELETE_SUPERSEDED_RUN = "delete_superseded_run"
ARCHIVE_DEAD_LETTERS = "archive_dead_letters"
PURGE_REPLAYED = "purge_replayed"
RECONCILE_CLOSED_RUNS = "reconcile_closed_runs"
REPAIR_PROJECTION = "repair_projection"
FORGET_SUPERSEDED_RUNS = "forget_superseded_runs"
SEND_DIGESTS = "send_digests"
"""The activities workflows call, by name: workflows import no activity module (the sandbox runs
each import statement of a workflow's module again for every run, and the layers stay apart)."""


@dataclass(frozen=True, kw_only=True)
class JobInput:
    """Starts a `JobWorkflow`: the job and its stage plan, resolved when it was submitted."""

    job_id: str
    tenant_id: str
    job_type: str
    payload: dict[str, Any]
    stages: tuple[Stage, ...]
    start_at: int = 0
    """The stage to begin with: a retry with an edited payload continues a dead job from its failed
    stage in a new run, the stages before it not run again."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The outputs of the stages before `start_at`, carried over from the run that produced them."""


@dataclass(frozen=True, kw_only=True)
class JobResult:
    """A completed job: each stage's output by stage name."""

    job_id: str
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StageInput:
    """Runs one stage: the job, the stage's declaration and the outputs of the stages before it."""

    job_id: str
    tenant_id: str
    job_type: str
    payload: dict[str, Any]
    stage: Stage
    position: int
    outputs: dict[str, Any] = field(default_factory=dict)
    last: bool = False
    """The job's final stage: on success its activity projects `complete` too."""
    attempts_before: int = 0
    """Attempts this stage made earlier in the run, before its breaker held it and the workflow
    started it again (Temporal counts from 1 anew): the error history numbers on from them."""


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """One stage's output (any JSON value)."""

    output: Any = None
    projected_complete: bool = False
    """The activity stored the job's `complete` status, so the workflow need not."""


@dataclass(frozen=True, kw_only=True)
class StatusInput:
    """A status change the workflow projects into the `jobs` table."""

    job_id: str
    run_id: str
    status: JobStatus
    stage: str | None = None
    job_type: str = ""


@dataclass(frozen=True, kw_only=True)
class DeadLetterInput:
    """Everything `record_dead_letter` stores about a job that ran out of retries or failed for good."""

    job_id: str
    run_id: str
    tenant_id: str
    job_type: str
    stage: str
    payload: dict[str, Any]
    error_reason: ErrorReason
    error_type: str
    error_message: str
    attempts: int
    reset_point: int | None = None
    """The event id of the workflow task that scheduled the stage last: what a retry from this stage
    resets to, known without reading the history back (None for a stage that is not an activity
    of its own: local, a review)."""


@dataclass(frozen=True, kw_only=True)
class DeadLetterResult:
    """The stored dead-letter entry's id."""

    dead_letter_id: str
    dlq_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class NotifyInput:
    """The dead letter to announce (its id only: the content stays in the database)."""

    dead_letter_id: str


@dataclass(frozen=True, kw_only=True)
class NotifyResult:
    """What happened: `sent`, `counted` into a later digest, `already` sent, or `off`."""

    outcome: str


@dataclass(frozen=True, kw_only=True)
class MaintenanceInput:
    """One maintenance pass: the ages that decide what is archived and purged, and how far back to
    look for runs that closed without reaching the dead-letter queue."""

    task_queue: str
    archive_after: timedelta
    purge_replayed_after: timedelta
    reconcile_lookback: timedelta


@dataclass(frozen=True, kw_only=True)
class MaintenanceResult:
    """What one pass did."""

    archived: int = 0
    purged: int = 0
    reconciled: int = 0
    repaired: int = 0
    forgotten: int = 0
    """Dead runs a reset replaced, handed to their deletion by this pass (see `forget_superseded_runs`)."""
    digests: int = 0


@dataclass(frozen=True, kw_only=True)
class ReviewInput:
    """A person's decision on a job waiting in a review stage."""

    decision: str
    """`approve` or `reject`."""
    reviewer: str
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReviewResult:
    """The decision as the job recorded it, and the stage it decided."""

    stage: str
    decision: str


@dataclass(frozen=True, kw_only=True)
class SupersededRun:
    """A job's dead run that a retry replaced with a new one."""

    job_id: str
    run_id: str
    delete_sent: bool = False
    """Whether the caller has already asked Temporal to delete the run (then only checks follow)."""


REPLAY_CAMPAIGN_WORKFLOW = "ReplayCampaign"
"""A bulk replay: started by `POST /v1/replays`, one workflow per campaign (see
`workflows/replay_campaign.py`)."""
COUNT_CAMPAIGN_ENTRIES = "count_campaign_entries"
SELECT_CAMPAIGN_ENTRIES = "select_campaign_entries"
REPLAY_CAMPAIGN_ENTRIES = "replay_campaign_entries"
CAMPAIGN_FATES = "campaign_fates"
FORGET_CAMPAIGN_RUNS = "forget_campaign_runs"


@dataclass(frozen=True, kw_only=True)
class CampaignFilter:
    """Which pending dead letters of the campaign's tenant it takes."""

    type: str | None = None
    reason: str | None = None
    stage: str | None = None
    fingerprint: str | None = None
    dlq_before: datetime | None = None
    dlq_after: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Canary:
    """Replay the first `count` entries (or `percent` of those the campaign will take), wait until
    each has completed or died again, and stop when more than `max_died_again_percent` died again."""

    count: int | None = None
    percent: float | None = None
    max_died_again_percent: float = 0.0
    settle_timeout: timedelta = timedelta(minutes=10)
    """A canary whose jobs have not all finished by then stops the campaign too."""


@dataclass(frozen=True, kw_only=True)
class EntryRef:
    """A dead letter a campaign selected, with the position its paging continues from."""

    id: str
    job_id: str
    dlq_at: datetime


@dataclass(frozen=True, kw_only=True)
class CampaignItem:
    """What a campaign did with one entry, kept when it was not a replay (`skipped`, `failed`)."""

    dead_letter_id: str
    job_id: str
    outcome: str
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class CampaignProgress:
    """Where a campaign stands; carried through continue-as-new and answered by its query."""

    state: str = "running"
    """running, paused, canary (waiting for its canary), finished, cancelled or stopped."""
    matched: int = 0
    taking: int = 0
    """How many entries it will take: `matched` or the order's `max`, whichever is smaller."""
    taken: int = 0
    replayed: int = 0
    resubmitted: int = 0
    skipped: int = 0
    failed: int = 0
    completed: int = 0
    """Of the jobs it replayed, how many have completed since (at its last look)."""
    died_again: int = 0
    canary_size: int = 0
    canary_passed: bool = False
    stop_reason: str | None = None
    problems: tuple[CampaignItem, ...] = ()
    """The latest entries skipped or failed, with why (at most `PROBLEMS_KEPT`)."""
    after: EntryRef | None = None
    """The last entry it selected: the next page starts after it."""
    counted: bool = False


@dataclass(frozen=True, kw_only=True)
class CampaignInput:
    """Starts a `ReplayCampaign`: who asked, what to replay, how fast, and what it has done so far
    (when it continued as new)."""

    campaign_id: str
    tenant_id: str
    actor: str
    filter: CampaignFilter
    max: int
    rate: float
    reason: str | None = None
    force: bool = False
    canary: Canary | None = None
    cutoff: datetime
    """Entries that died after the campaign was asked for are not taken (its own replays that die
    again among them)."""
    progress: CampaignProgress = field(default_factory=CampaignProgress)


@dataclass(frozen=True, kw_only=True)
class SelectEntries:
    """The next page of pending entries a campaign takes."""

    tenant_id: str
    filter: CampaignFilter
    cutoff: datetime
    after: EntryRef | None
    limit: int


@dataclass(frozen=True, kw_only=True)
class ReplayEntries:
    """One paced step of a campaign: replay these entries."""

    campaign_id: str
    tenant_id: str
    actor: str
    reason: str | None
    force: bool
    entry_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReplayedEntries:
    """What became of each entry of a step, by outcome, with the ones not replayed."""

    replayed: int = 0
    resubmitted: int = 0
    skipped: int = 0
    failed: int = 0
    problems: tuple[CampaignItem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CampaignRef:
    """A campaign, for the activities that read what it did from the database."""

    campaign_id: str
    tenant_id: str


@dataclass(frozen=True, kw_only=True)
class CampaignFates:
    """Of the jobs a campaign replayed: how many, how many completed since, how many died again."""

    replayed: int = 0
    completed: int = 0
    died_again: int = 0


BREAKER_WORKFLOW = "CircuitBreaker"
"""Acts for one breaker (`BreakerRef.workflow_id`): opens it, pauses the jobs it holds, probes after
the cool-down, closes it and releases the jobs paced. Started by the first signal sent to it."""
PROBE_OUTCOME = "probe_outcome"
OPERATE_BREAKER = "operate"
BREAKER_RELEASED = "breaker_released"
"""The signal that lets a job workflow waiting on a breaker run its stage again."""
OPEN_BREAKER = "open_breaker"
HALF_OPEN_BREAKER = "half_open_breaker"
CLOSE_BREAKER = "close_breaker"
RELEASE_HELD_JOBS = "release_held_jobs"
HOLD_AT_BREAKER = "hold_at_breaker"


@dataclass(frozen=True, kw_only=True)
class BreakerOrder:
    """A reason to move the breaker: `trip` (its window crossed the threshold), or an operator's
    `open` or `close`."""

    action: str
    reason: str
    actor: str = "breaker"


@dataclass(frozen=True, kw_only=True)
class BreakerCarried:
    """Where a breaker's workflow was when it continued as new (its history grown long)."""

    state: str
    cool_down: timedelta
    manual: bool = False
    orders: tuple[BreakerOrder, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BreakerInput:
    """Starts a breaker's workflow: which breaker, and its declaration as the stage had it."""

    job_type: str
    stage: str
    key: str = ""
    breaker: Breaker = field(default_factory=Breaker)
    probe_timeout: timedelta = timedelta(minutes=5)
    """How long a probe's attempt may take before it counts as failed (the stage's own timeout)."""
    carried: BreakerCarried | None = None
    """Set when the workflow continued as new: the state to go on from."""


@dataclass(frozen=True, kw_only=True)
class ProbeOutcome:
    """How the half-open breaker's probe attempt ended."""

    job_id: str
    ok: bool
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class BreakerChange:
    """Moves a breaker to `state` (the breaker's workflow is the only caller)."""

    job_type: str
    stage: str
    key: str
    state: str
    reason: str
    actor: str
    manual: bool = False
    cool_down: timedelta = timedelta(0)


@dataclass(frozen=True, kw_only=True)
class ReleaseHeld:
    """Releases up to `limit` of the jobs a breaker holds (longest held first)."""

    job_type: str
    stage: str
    key: str
    limit: int
    probe: bool = False
    """Release one job as the half-open breaker's probe, naming it so."""


@dataclass(frozen=True, kw_only=True)
class Released:
    """How many held jobs were released, how many are still held, and the probe's job if one."""

    released: int = 0
    left: int = 0
    probe_job_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HoldInput:
    """A job whose stage's last attempt failed while its breaker was open: hold it there."""

    job_id: str
    job_type: str
    stage: str
    key: str = ""
