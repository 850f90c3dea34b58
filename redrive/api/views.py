"""Table rows → response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from redrive.contracts import CampaignFilter, Canary
from redrive.operations import CampaignOrder, CampaignReport, Services
from redrive.operations.breakers import BreakerReport
from redrive.schemas import (
    ActionPublic,
    BreakerDeclaration,
    BreakerHold,
    BreakerPublic,
    BulkReplayRequest,
    CampaignProblem,
    CampaignPublic,
    CanaryRequest,
    DeadLetterLink,
    DeadLetterPublic,
    JobPublic,
    ReplayFilter,
    StagePublic,
)
from redrive.store.archival import ArchiveRule
from redrive.store.models import BreakerWaiter, DeadLetter, Job, JobAction, JobStage
from redrive.temporal import workflow_url


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def job_view(
    state: Services,
    job: Job,
    stages: Sequence[JobStage] = (),
    actions: Sequence[JobAction] = (),
    chain: Sequence[DeadLetter] = (),
    held: BreakerWaiter | None = None,
) -> JobPublic:
    """The public shape of a job (its status also in its type's own words), its stages and what
    people did to it."""
    settings = state.settings
    status = ArchiveRule.after(settings.archive_after).job_status(job.status, job.finished_at)
    first_start = min((s.started_at for s in stages if s.started_at is not None), default=None)
    return JobPublic(
        id=job.id,
        type=job.type,
        status=status,
        label=state.registry.label(job.type, status, job.stage),
        stage=job.stage,
        run_id=job.run_id,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        next_retry_at=job.next_retry_at,
        error_reason=job.error_reason,
        error_type=job.error_type,
        error_message=job.error_message,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        processing_time_s=_seconds(first_start, job.finished_at),
        stages=[
            StagePublic(
                name=stage.stage,
                status=stage.status,
                executions=stage.executions,
                attempt=stage.attempt,
                started_at=stage.started_at,
                finished_at=stage.finished_at,
                duration_s=_seconds(stage.started_at, stage.finished_at),
            )
            for stage in stages
        ],
        temporal_url=workflow_url(settings, job.id, job.run_id),
        actions=[ActionPublic(action=a.action, by=a.actor, note=a.note, at=a.at) for a in actions],
        dead_letters=[DeadLetterLink.model_validate(entry, from_attributes=True) for entry in chain],
        held_by_breaker=_hold(settings.resolved_api_url(), held) if held is not None else None,
    )


def _hold(api_url: str, held: BreakerWaiter) -> BreakerHold:
    query = f"?key={held.key}" if held.key else ""
    return BreakerHold(
        job_type=held.job_type,
        stage=held.stage,
        key=held.key,
        how="paused" if held.how == "paused" else "waiting",
        since=held.since,
        breaker_url=f"{api_url.rstrip('/')}/v1/breakers/{held.job_type}/{held.stage}{query}",
    )


def breaker_view(report: BreakerReport) -> BreakerPublic:
    """The public shape of a breaker."""
    declared = report.declaration
    state: Literal["closed", "open", "half_open"] = (
        "open" if report.state == "open" else "half_open" if report.state == "half_open" else "closed"
    )
    return BreakerPublic(
        job_type=report.ref.job_type,
        stage=report.ref.stage,
        key=report.ref.key,
        state=state,
        since=report.since,
        reason=report.reason,
        by=report.actor,
        manual=report.manual,
        cool_down_s=report.cool_down.total_seconds(),
        probe_job_id=report.probe_job_id,
        attempts=report.figures.attempts,
        failures=report.figures.failures,
        waiting=report.waiting,
        declaration=BreakerDeclaration(
            window_s=declared.window.total_seconds(),
            min_failures=declared.min_failures,
            failure_rate=declared.failure_rate,
            cool_down_s=declared.cool_down.total_seconds(),
            max_cool_down_s=declared.max_cool_down.total_seconds(),
            resume_rate=declared.resume_rate,
            per=declared.per,
        ),
    )


def dead_letter_view(entry: DeadLetter, archive: ArchiveRule) -> DeadLetterPublic:
    """The public shape of a dead-letter entry; old pending entries read as archived."""
    if entry.replayed_at is not None:
        state: Literal["pending", "replayed", "archived"] = "replayed"
    elif entry.archived_at is not None or archive.archived(True, entry.dlq_at):
        state = "archived"
    else:
        state = "pending"
    return DeadLetterPublic.model_validate(
        {**entry.model_dump(), "state": state, "replayed_by": entry.user_id}
    )


def campaign_order(body: BulkReplayRequest, canary: CanaryRequest | None = None) -> CampaignOrder:
    """A bulk replay request as the campaign operation takes it."""
    f = body.filter
    where = CampaignFilter(
        type=f.type,
        reason=f.reason.value if f.reason else None,
        stage=f.stage,
        fingerprint=f.fingerprint,
        dlq_before=f.dlq_before,
        dlq_after=f.dlq_after,
    )
    return CampaignOrder(where, body.max, body.rate, body.reason, body.force, _canary(canary))


def _canary(canary: CanaryRequest | None) -> Canary | None:
    if canary is None:
        return None
    return Canary(
        count=canary.count,
        percent=canary.percent,
        max_died_again_percent=canary.max_died_again_percent,
        settle_timeout=timedelta(seconds=canary.settle_seconds),
    )


def campaign_view(report: CampaignReport) -> CampaignPublic:
    """A campaign with its progress and its jobs' fates."""
    request, progress, fates = report.request, report.request.progress, report.fates
    where = request.filter
    canary = request.canary
    replayed = max(fates.replayed, progress.replayed + progress.resubmitted)
    state, stop_reason = progress.state, progress.stop_reason
    if report.status not in ("RUNNING", "COMPLETED") and state not in ("finished", "cancelled", "stopped"):
        state, stop_reason = "cancelled", f"ended in Temporal ({report.status.lower()})"
    return CampaignPublic(
        id=request.campaign_id,
        state=state,
        workflow_status=report.status,
        created_at=request.cutoff,
        created_by=request.actor,
        filter=ReplayFilter.model_validate(
            {key: value for key, value in vars(where).items() if value is not None}, strict=False
        ),
        max=request.max,
        rate=request.rate,
        reason=request.reason,
        force=request.force,
        canary=None
        if canary is None
        else CanaryRequest(
            count=canary.count,
            percent=canary.percent,
            max_died_again_percent=canary.max_died_again_percent,
            settle_seconds=canary.settle_timeout.total_seconds(),
        ),
        matched=progress.matched,
        taking=progress.taking,
        taken=progress.taken,
        replayed=progress.replayed,
        resubmitted=progress.resubmitted,
        skipped=progress.skipped,
        failed=progress.failed,
        completed=fates.completed,
        died_again=fates.died_again,
        still_running=max(0, replayed - fates.completed - fates.died_again),
        stop_reason=stop_reason,
        problems=[CampaignProblem.model_validate(vars(item)) for item in progress.problems],
    )
