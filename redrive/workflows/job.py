"""`JobWorkflow`: runs a job's stages in order; a stage that gives up sends the job to the DLQ.

One definition serves every job type: it is Temporal's dynamic workflow, started under the job
type's name, so the Temporal UI's Type column and `WorkflowType="invoice"` name the job type."""

# The sandbox runs this module again for every workflow run, each import statement through its
# importer: so no `from __future__ import annotations` (the SDK would compile every string
# annotation again), few import statements, and activities called by name rather than imported.
import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as StageTimeout

with workflow.unsafe.imports_passed_through():
    from redrive.breaker_policy import downstream
    from redrive.contracts import (
        BREAKER_RELEASED,
        HOLD_AT_BREAKER,
        NOTIFY_DEAD_LETTER,
        RECORD_DEAD_LETTER,
        RECORD_STATUS,
        DeadLetterInput,
        DeadLetterResult,
        HoldInput,
        JobInput,
        JobResult,
        NotifyInput,
        ReviewInput,
        ReviewResult,
        StageInput,
        StageResult,
        StatusInput,
    )
    from redrive.retry_policy import (
        ALERT_RETRY,
        ALERT_TIMEOUT,
        BOOKKEEPING_RETRY,
        BOOKKEEPING_TIMEOUT,
        BREAKER_RECHECK,
        LOCAL_RETRY_THRESHOLD,
        to_retry_policy,
    )
    from redrive.status import ERROR_REASON, JOB_STAGE, JOB_STATUS, ErrorReason, JobStatus
    from redrive.workflows.failures import DeadLetterCause, classify, held_by_breaker

if TYPE_CHECKING:  # annotations of helpers only, which the SDK never resolves
    from redrive.jobtypes.registry import Stage


@workflow.defn(dynamic=True)
class JobWorkflow:
    """One job: each stage is an activity with its declared retry policy and timeouts."""

    def __init__(self) -> None:
        self._status = JobStatus.QUEUED
        self._stage: str | None = None
        self._awaiting_review: str | None = None
        self._review: ReviewInput | None = None
        self._released = False
        self._reset_points: dict[str, int] = {}
        """By stage, the event id of the workflow task that scheduled its activity last."""

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> JobResult:
        return await self.execute(self._job(args))

    @staticmethod
    def _job(args: Sequence[RawValue]) -> JobInput:
        try:
            job: JobInput = workflow.payload_converter().from_payload(args[0].payload, JobInput)
        except Exception as error:  # any workflow type no one registered lands here too
            name = workflow.info().workflow_type
            raise ApplicationError(
                f"workflow type {name!r} was not started as a redrive job: {error}",
                type="NotAJob",
                non_retryable=True,
            ) from None
        return job

    async def execute(self, job: JobInput) -> JobResult:
        """Run `job`'s stages in order."""
        outputs: dict[str, object] = dict(job.outputs)
        result = StageResult()
        try:
            for position, stage in enumerate(job.stages):
                if position < job.start_at:  # done in an earlier run: its output is carried over
                    continue
                if stage.kind == "review":
                    result = await self._await_review(job, stage)
                else:
                    result = await self._activity_stage(job, stage, position, outputs)
                outputs[stage.name] = result.output
        except asyncio.CancelledError:
            await self._cancelled(job)
            raise
        except ActivityError as error:
            if not isinstance(error.cause, CancelledError):
                raise
            await self._cancelled(job)
            raise
        self._set(JobStatus.COMPLETE, self._stage)
        if not result.projected_complete:  # the last stage could not write it: do it here, durably
            await self._project(job, JobStatus.COMPLETE)
        return JobResult(job_id=job.job_id, outputs=outputs)

    @workflow.query
    def status(self) -> tuple[JobStatus, str | None]:
        """The status and stage as the workflow sees them."""
        return self._status, self._stage

    @workflow.signal(name=BREAKER_RELEASED)
    def breaker_released(self) -> None:
        """The breaker that held this job's stage has closed: run the stage again."""
        self._released = True

    @workflow.update
    async def review(self, decision: ReviewInput) -> ReviewResult:
        """A person's decision on the review stage the job is waiting in."""
        stage = self._awaiting_review or ""
        self._review = decision
        return ReviewResult(stage=stage, decision=decision.decision)

    @review.validator
    def _review_allowed(self, decision: ReviewInput) -> None:
        if self._awaiting_review is None or self._review is not None:
            raise ApplicationError(
                f"job is {self._status.value}, not waiting for a review", type="NotInReview"
            )
        if decision.decision not in ("approve", "reject"):
            raise ApplicationError("decision must be approve or reject", type="InvalidDecision")

    async def _activity_stage(
        self, job: JobInput, stage: "Stage", position: int, outputs: dict[str, object]
    ) -> StageResult:
        self._set(JobStatus.RUNNING, stage.name)
        attempts_before = 0
        while True:
            try:
                return await self._run_stage(job, stage, position, outputs, attempts_before)
            except ActivityError as error:
                if isinstance(error.cause, CancelledError):
                    raise
                if stage.breaker is None or not held_by_breaker(error):
                    await self._dead_letter(job, stage, classify(error, stage), error)
                # Its last attempt failed while the breaker was open: not the job's fault, so it
                # waits for the breaker and starts the stage again rather than dead-lettering.
                attempts_before = classify(error, stage).attempts
                await self._wait_for_breaker(job, stage)
            except (ApplicationError, StageTimeout) as error:  # a local stage's failure comes unwrapped
                if not stage.local:
                    raise
                await self._dead_letter(job, stage, classify(error, stage), error)

    async def _wait_for_breaker(self, job: JobInput, stage: "Stage") -> None:
        assert stage.breaker is not None
        key = downstream(stage.breaker, job.payload)
        held = HoldInput(job_id=job.job_id, job_type=job.job_type, stage=stage.name, key=key)
        workflow.set_current_details(f"held: the circuit breaker of stage {stage.name} is open")
        self._released = False
        # One local activity and one timer per recheck keep the history small however long it waits.
        while await workflow.execute_local_activity(
            HOLD_AT_BREAKER,
            held,
            result_type=bool,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        ):
            try:
                await workflow.wait_condition(lambda: self._released, timeout=BREAKER_RECHECK)
                return
            except TimeoutError:
                continue

    async def _await_review(self, job: JobInput, stage: "Stage") -> StageResult:
        self._set(JobStatus.PENDING_REVIEW, stage.name)
        self._awaiting_review = stage.name
        await self._project(job, JobStatus.PENDING_REVIEW)
        try:
            await workflow.wait_condition(lambda: self._review is not None, timeout=stage.review_timeout)
        except TimeoutError:
            self._awaiting_review = None
            message = f"no review decision within {stage.review_timeout}"
            await self._dead_letter(
                job, stage, DeadLetterCause(ErrorReason.TIMEOUT, "ReviewTimeout", message, 1)
            )
        review, self._review, self._awaiting_review = self._review, None, None
        assert review is not None  # the wait ended on the condition
        if review.decision == "reject":
            message = f"rejected by {review.reviewer}: {review.comment or 'no comment'}"
            await self._dead_letter(job, stage, DeadLetterCause(ErrorReason.REJECTED, "Rejected", message, 1))
        return StageResult(
            output={"decision": review.decision, "by": review.reviewer, "comment": review.comment}
        )

    async def _cancelled(self, job: JobInput) -> None:
        # The cancellation was delivered once; the bookkeeping after it runs normally.
        self._set(JobStatus.CANCELLED, self._stage)
        await self._project(job, JobStatus.CANCELLED)

    async def _run_stage(
        self, job: JobInput, stage: "Stage", position: int, outputs: dict[str, object], attempts_before: int
    ) -> StageResult:
        stage_input = StageInput(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            job_type=job.job_type,
            payload=job.payload,
            stage=stage,
            position=position,
            outputs=dict(outputs),
            last=position == len(job.stages) - 1,
            attempts_before=attempts_before,
        )
        if stage.local and stage.task_queue is None:  # a stage pinned to other workers runs there
            local: StageResult = await workflow.execute_local_activity(
                stage.activity,
                stage_input,
                result_type=StageResult,
                start_to_close_timeout=stage.start_to_close_timeout,
                retry_policy=to_retry_policy(stage.retry),
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                activity_id=stage.name,
            )
            return local
        # This activation's commands complete the workflow task whose started event is the history's
        # last: its completed event comes next, and a retry from this stage resets to it.
        self._reset_points[stage.name] = workflow.info().get_current_history_length() + 1
        # Stages are named by the registry's data, so the activity is named by string here.
        result: StageResult = await workflow.execute_activity(
            stage.activity,
            stage_input,
            result_type=StageResult,
            task_queue=stage.task_queue,
            start_to_close_timeout=stage.start_to_close_timeout,
            schedule_to_start_timeout=stage.schedule_to_start_timeout,
            heartbeat_timeout=stage.heartbeat_timeout,
            retry_policy=to_retry_policy(stage.retry),
            # A cancelled job is over only once its stage has stopped (it sees the cancel on heartbeat).
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            # The activity id names the stage in the UI; a `summary` would cost a payload per stage.
            activity_id=stage.name,
        )
        return result

    async def _dead_letter(
        self,
        job: JobInput,
        stage: "Stage",
        failure: DeadLetterCause,
        error: ActivityError | ApplicationError | StageTimeout | None = None,
    ) -> NoReturn:
        self._set(JobStatus.DEAD_LETTER, stage.name)
        workflow.upsert_search_attributes([ERROR_REASON.value_set(failure.reason.value)])
        recorded: DeadLetterResult = await workflow.execute_activity(
            RECORD_DEAD_LETTER,
            DeadLetterInput(
                job_id=job.job_id,
                run_id=workflow.info().run_id,
                tenant_id=job.tenant_id,
                job_type=job.job_type,
                stage=stage.name,
                payload=job.payload,
                error_reason=failure.reason,
                error_type=failure.error_type,
                error_message=failure.message,
                attempts=failure.attempts,
                reset_point=self._reset_points.get(stage.name),
            ),
            result_type=DeadLetterResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
            summary="record dead letter",
        )
        await self._notify(recorded)
        raise ApplicationError(
            f"job {job.job_id} dead-lettered in stage {stage.name}: {failure.reason.value} "
            f"after {failure.attempts} attempt(s): {failure.error_type}: {failure.message}",
            type=failure.reason.value,
            non_retryable=True,
        ) from error

    async def _notify(self, recorded: DeadLetterResult) -> None:
        try:
            await workflow.execute_activity(
                NOTIFY_DEAD_LETTER,
                NotifyInput(dead_letter_id=recorded.dead_letter_id),
                start_to_close_timeout=ALERT_TIMEOUT,
                retry_policy=ALERT_RETRY,
                summary="notify",
            )
        except ActivityError as error:  # an unreachable mail server must not keep a dead job open
            workflow.logger.warning("dead-letter alert not sent: %s", error.cause or error)

    def _set(self, status: JobStatus, stage: str | None) -> None:
        changed = status != self._status
        self._status, self._stage = status, stage
        if stage is not None:
            workflow.set_current_details(f"{status.value}: stage {stage}")
        if changed:
            # Search attributes on status changes only: each upsert is a visibility write in the
            # server, measured as a quarter of a three-stage job's throughput when done per stage.
            # JobStage names where a job stopped or waits; while it runs, its stage moves on
            # without a visibility write, so it is unset rather than left stale.
            workflow.upsert_search_attributes(
                [
                    JOB_STATUS.value_set(status.value),
                    JOB_STAGE.value_unset()
                    if status == JobStatus.RUNNING or stage is None
                    else JOB_STAGE.value_set(stage),
                ]
            )

    async def _project(self, job: JobInput, status: JobStatus) -> None:
        await workflow.execute_local_activity(
            RECORD_STATUS,
            StatusInput(
                job_id=job.job_id,
                run_id=workflow.info().run_id,
                status=status,
                stage=self._stage,
                job_type=job.job_type,
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
