"""The activity behind every stage: runs the handler, projects progress into SQL, and turns a
handler's exception into the `ApplicationError` Temporal retries (with jitter) or gives up on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import Handler, StageContext
from activities.deps import ActivityDeps
from redrive.errors import error_type_name, is_permanent, retry_after_hint
from redrive.messages import StageInput, StageResult
from redrive.retries import next_delay
from redrive.status import JobStatus
from redrive.store import hot_paths
from redrive.store.hot_paths import StageStart
from redrive.store.jobs import JobRepository
from redrive.store.models import StageFailure

log = logging.getLogger(__name__)

MAX_MESSAGE = 2000


class StageActivities:
    """Builds one Temporal activity per stage handler, all sharing `deps`."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    def activity(self, name: str, handler: Handler) -> Callable[[StageInput], Awaitable[StageResult]]:
        """The activity registered as `name` that runs `handler`."""

        async def run(stage_input: StageInput) -> StageResult:
            return await self.run(handler, stage_input)

        run.__name__ = run.__qualname__ = f"stage_{name.replace('.', '_')}"
        return activity.defn(name=name)(run)

    async def run(self, handler: Handler, stage_input: StageInput) -> StageResult:
        """One attempt: project `running`, run the handler, project the outcome."""
        info = activity.info()
        run_id = _run_id(info)
        await self._best_effort("start", self._started(stage_input, info.attempt, run_id))
        context = StageContext(
            job_id=stage_input.job_id,
            job_type=stage_input.job_type,
            stage=stage_input.stage.name,
            attempt=info.attempt,
            payload=stage_input.payload,
            outputs=stage_input.outputs,
            http=self.deps.http,
        )
        try:
            output = await handler(context)
        except Exception as error:
            raise await self._failure(stage_input, run_id, error) from error
        projected = await self._best_effort("finish", self._finished(stage_input, run_id))
        return StageResult(output=output, projected_complete=projected and stage_input.last)

    async def _started(self, stage_input: StageInput, attempt: int, run_id: str) -> None:
        start = StageStart(
            job_id=stage_input.job_id,
            tenant_id=stage_input.tenant_id,
            job_type=stage_input.job_type,
            run_id=run_id,
            payload=stage_input.payload,
            stage=stage_input.stage.name,
            position=stage_input.position,
            attempt=attempt,
            max_attempts=stage_input.stage.retry.max_attempts,
            at=self.deps.now(),
        )
        await self.deps.projection.write(hot_paths.stage_started(start))

    async def _finished(self, stage_input: StageInput, run_id: str) -> None:
        job_id, stage, now = stage_input.job_id, stage_input.stage.name, self.deps.now()
        rows = hot_paths.stage_finished(job_id, stage, now)
        if stage_input.last:  # saves the workflow a local activity (an extra activation and marker) per job
            rows += hot_paths.status_changed(job_id, run_id, JobStatus.COMPLETE, now, stage)
        await self.deps.projection.write(rows)

    async def _failure(self, stage_input: StageInput, run_id: str, error: Exception) -> ApplicationError:
        """Classify `error`, record the attempt, and build the error Temporal acts on."""
        info = activity.info()
        declaration = stage_input.stage.retry
        if isinstance(error, ApplicationError):  # a handler that classified the error itself
            name = error.type or "ApplicationError"
            permanent = error.non_retryable or name in declaration.non_retryable
        else:
            name = error_type_name(error)
            permanent = is_permanent(error) or name in declaration.non_retryable
        will_retry = not permanent and info.attempt < declaration.max_attempts
        delay = next_delay(declaration, info.attempt, self.deps.unit_random(), retry_after_hint(error))
        message = (str(error) or name)[:MAX_MESSAGE]
        failed_at = self.deps.now()
        failure = StageFailure(
            job_id=stage_input.job_id,
            run_id=run_id,
            stage=stage_input.stage.name,
            attempt=info.attempt,
            error_type=name,
            message=message,
            started_at=info.started_time,
            failed_at=failed_at,
            next_retry_at=failed_at + delay if will_retry else None,
        )
        await self._best_effort("failure", self._record_failure(failure, will_retry))
        return ApplicationError(
            message,
            {"attempt": info.attempt, "max_attempts": declaration.max_attempts},
            type=name,
            non_retryable=permanent,
            next_retry_delay=delay if will_retry else None,
        )

    async def _record_failure(self, failure: StageFailure, will_retry: bool) -> None:
        async with self.deps.sessions() as session, session.begin():
            await JobRepository(session).stage_failed(failure, will_retry)

    @staticmethod
    async def _best_effort(what: str, write: Awaitable[Any]) -> bool:
        # The projection must not spend the stage's retry budget: Temporal holds the truth, and a
        # terminal state this could not write is written by the workflow's retried bookkeeping.
        try:
            await write
        except Exception:
            log.warning("could not project stage %s into the database", what, exc_info=True)
            return False
        return True


def _run_id(info: activity.Info) -> str:
    if info.workflow_run_id is None:  # only a standalone activity has none; stages never are
        raise ApplicationError("stage activities run inside a JobWorkflow", non_retryable=True)
    return info.workflow_run_id
