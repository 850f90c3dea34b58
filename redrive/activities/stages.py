"""The activity behind every stage: runs the handler, projects progress into SQL, and turns a
handler's exception into the `ApplicationError` Temporal retries (with jitter) or gives up on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from redrive.activities.breakers import Admission, BreakerGuard
from redrive.activities.deps import ActivityDeps
from redrive.context import Handler, StageContext
from redrive.contracts import StageInput, StageResult
from redrive.errors import error_type_name, is_permanent, retry_after_hint
from redrive.jobtypes.payloads import printable
from redrive.logs import job_fields
from redrive.retry_policy import next_delay
from redrive.status import JobStatus
from redrive.store import projection
from redrive.store.models import StageFailure
from redrive.store.projection import GroupCommit, ProjectionWrites, Row, StageStart

log = logging.getLogger(__name__)

MAX_MESSAGE = 2000

BREAKER_OPEN = "BreakerOpen"
"""The error type of an attempt its stage's breaker held: the handler was not called."""

START_DELAY = 0.2
"""Seconds a stage runs before its `running` is written on its own. A stage done sooner writes its
start with its outcome, in one write (half the projection writes of a job of quick stages); nobody
watching a job sees the difference, and the stored start time is the attempt's real one."""


class StageActivities:
    """Builds one Temporal activity per stage handler, all sharing `deps`."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.breakers = BreakerGuard(deps)

    def activity(self, name: str, handler: Handler) -> Callable[[StageInput], Awaitable[StageResult]]:
        """The activity registered as `name` that runs `handler`."""

        async def run(stage_input: StageInput) -> StageResult:
            return await self.run(handler, stage_input)

        run.__name__ = run.__qualname__ = f"stage_{name.replace('.', '_')}"
        return activity.defn(name=name)(run)

    async def run(self, handler: Handler, stage_input: StageInput) -> StageResult:
        """One attempt: run the handler, project `running` once it has run `START_DELAY`, project
        the outcome (with the start if that was not written yet)."""
        info = activity.info()
        run_id = _run_id(info)
        attempt = info.attempt + stage_input.attempts_before
        admission = await self.breakers.admit(stage_input) if stage_input.stage.breaker else None
        if admission is not None and admission.held:
            raise await self._held(stage_input, run_id, admission)
        start = _DeferredStart(self.deps.projection, self._start(stage_input, attempt, run_id))
        context = StageContext(
            job_id=stage_input.job_id,
            job_type=stage_input.job_type,
            stage=stage_input.stage.name,
            attempt=attempt,
            payload=stage_input.payload,
            outputs=stage_input.outputs,
            http=self.deps.http,
            tenant_id=stage_input.tenant_id,
        )
        if info.attempt > 1:  # the attempt before may have left no record (its worker died)
            retried_at = info.current_attempt_scheduled_time
            previous = attempt - 1
            lost = projection.attempt_lost(stage_input.job_id, run_id, context.stage, previous, retried_at)
            await _best_effort("lost attempt", self.deps.projection.write(lost))
        pulse = _Pulse(context, info.heartbeat_timeout)
        began = time.monotonic()
        try:
            output = await handler(context)
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():  # the attempt is spent: say so in the error history
                self._measure(stage_input, began, "failed")
                await _best_effort("start", start.settled_write())
                await _best_effort("shutdown", self._cut_off(stage_input, run_id))
            raise
        except Exception as error:
            # No heartbeat from here on: a heartbeat answered "paused" (the breaker pauses this stage
            # for its retry) would cancel the attempt while it records its failure.
            pulse.stop()
            self._measure(stage_input, began, "failed")
            await _best_effort("start", start.settled_write())
            raise await self._failure(stage_input, run_id, error, admission) from error
        finally:
            start.stop_timer()
            pulse.stop()
        self._measure(stage_input, began, "success")
        if admission is not None:
            await self.breakers.settle(stage_input, admission, failed=False, why="")
        projected = await _best_effort("finish", self._finished(stage_input, run_id, start))
        return StageResult(output=output, projected_complete=projected and stage_input.last)

    def _measure(self, stage_input: StageInput, began: float, outcome: str) -> None:
        labels = {"job_type": stage_input.job_type, "stage": stage_input.stage.name}
        self.deps.metrics.attempts.add(1, {**labels, "outcome": outcome})
        self.deps.metrics.duration.record(time.monotonic() - began, labels)

    def _start(self, stage_input: StageInput, attempt: int, run_id: str) -> StageStart:
        return StageStart(
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

    async def _finished(self, stage_input: StageInput, run_id: str, start: _DeferredStart) -> None:
        job_id, stage, now = stage_input.job_id, stage_input.stage.name, self.deps.now()
        rows = await start.settle(finished_at=now) or projection.stage_finished(job_id, stage, now)
        if stage_input.last:  # saves the workflow a local activity (an extra activation and marker) per job
            rows += projection.status_changed(job_id, run_id, JobStatus.COMPLETE, now, stage)
        await self.deps.projection.write(rows)
        if stage_input.last:
            log.info("job %s complete", job_id, extra=_fields(stage_input, run_id, activity.info().attempt))
            self.deps.metrics.completed.add(1, {"job_type": stage_input.job_type})

    async def _failure(
        self, stage_input: StageInput, run_id: str, error: Exception, admission: Admission | None
    ) -> ApplicationError:
        """Classify `error`, record the attempt, count it against the stage's breaker, and build the
        error Temporal acts on."""
        info = activity.info()
        attempt = info.attempt + stage_input.attempts_before
        declaration = stage_input.stage.retry
        if isinstance(error, ApplicationError):  # a handler that classified the error itself
            name = error.type or "ApplicationError"
            permanent = error.non_retryable or name in declaration.non_retryable
        else:
            name = error_type_name(error)
            permanent = is_permanent(error) or name in declaration.non_retryable
        allowed = _allowed(info, declaration.max_attempts)
        will_retry = not permanent and info.attempt < allowed
        delay = next_delay(declaration, info.attempt, self.deps.unit_random(), retry_after_hint(error))
        name = printable(name)  # an error's text is the handler's: any character may be in it
        message = printable(str(error) or name)[:MAX_MESSAGE]
        failed_at = self.deps.now()
        failure = StageFailure(
            job_id=stage_input.job_id,
            run_id=run_id,
            stage=stage_input.stage.name,
            attempt=attempt,
            error_type=name,
            message=message,
            started_at=info.started_time,
            failed_at=failed_at,
            next_retry_at=failed_at + delay if will_retry else None,
        )
        await _best_effort("failure", self._record_failure(failure, will_retry))
        held = False
        if admission is not None:  # a failure the job could not help counts against the breaker
            held = await self.breakers.settle(stage_input, admission, not permanent, f"{name}: {message}")
            if held and will_retry:
                await _best_effort("breaker hold", self.breakers.hold(stage_input, admission))
        labels = {"job_type": stage_input.job_type, "stage": failure.stage, "error_type": name}
        self.deps.metrics.failures.add(1, labels)
        then = (
            f"retry in {delay.total_seconds():.1f} s"
            if will_retry
            else "no retry left"
            if not permanent
            else "permanent"
        )
        log.warning(
            "stage %s failed on attempt %d of %d (%s): %s: %s",
            failure.stage,
            attempt,
            stage_input.attempts_before + allowed,
            then,
            name,
            message,
            extra=_fields(stage_input, run_id, attempt),
        )
        return ApplicationError(
            message,
            {"attempt": attempt, "max_attempts": stage_input.attempts_before + allowed, "held": held},
            type=name,
            non_retryable=permanent,
            next_retry_delay=delay if will_retry else None,
            # Expected: the line above says it once; the SDK then logs it at DEBUG, without a traceback.
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _held(self, stage_input: StageInput, run_id: str, admission: Admission) -> ApplicationError:
        """An attempt the breaker holds: the handler is not called; the stage is paused (its retry
        waits for the breaker) and the attempt recorded as held."""
        info = activity.info()
        attempt = info.attempt + stage_input.attempts_before
        allowed = _allowed(info, stage_input.stage.retry.max_attempts)
        if await self.breakers.give_back(stage_input, allowed):
            allowed += 1
        will_retry = info.attempt < allowed
        if will_retry:
            await _best_effort("breaker hold", self.breakers.hold(stage_input, admission))
        message = f"held by circuit breaker {admission.ref} ({admission.state}); the handler was not called"
        failure = StageFailure(
            job_id=stage_input.job_id,
            run_id=run_id,
            stage=stage_input.stage.name,
            attempt=attempt,
            error_type=BREAKER_OPEN,
            message=message,
            started_at=info.started_time,
            failed_at=self.deps.now(),
        )
        await _best_effort("failure", self._record_failure(failure, will_retry))
        log.info(
            "stage %s held by its breaker on attempt %d",
            failure.stage,
            attempt,
            extra=_fields(stage_input, run_id, attempt),
        )
        return ApplicationError(
            message,
            {"attempt": attempt, "max_attempts": stage_input.attempts_before + allowed, "held": True},
            type=BREAKER_OPEN,
            next_retry_delay=admission.breaker.cool_down if will_retry else None,
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _cut_off(self, stage_input: StageInput, run_id: str) -> None:
        info = activity.info()
        now = self.deps.now()
        failure = StageFailure(
            job_id=stage_input.job_id,
            run_id=run_id,
            stage=stage_input.stage.name,
            attempt=info.attempt + stage_input.attempts_before,
            error_type="WorkerShutdown",
            message="the worker shut down before the attempt finished; Temporal retries it elsewhere",
            started_at=info.started_time,
            failed_at=now,
        )
        log.warning(
            "stage %s cut off by the worker's shutdown on attempt %d",
            failure.stage,
            info.attempt,
            extra=_fields(stage_input, run_id, info.attempt),
        )
        await self._record_failure(failure, info.attempt < stage_input.stage.retry.max_attempts)

    async def _record_failure(self, failure: StageFailure, will_retry: bool) -> None:
        async with self.deps.sessions() as session, session.begin():
            await ProjectionWrites(session).stage_failed(failure, will_retry)


async def _best_effort(what: str, write: Awaitable[Any]) -> bool:
    # The projection must not spend the stage's retry budget: Temporal holds the truth, and a
    # terminal state this could not write is written by the workflow's retried bookkeeping.
    try:
        await write
    except Exception:
        log.warning("could not project stage %s into the database", what, exc_info=True)
        return False
    return True


class _Pulse:
    """Heartbeats while the handler runs, repeating its last details: a worker that dies stops them,
    so Temporal gives its attempt to another worker after the heartbeat timeout (and a cancellation
    reaches a handler that never heartbeats itself). The SDK throttles what reaches the server."""

    def __init__(self, context: StageContext, timeout: timedelta | None) -> None:
        self._context = context
        self._interval = timeout.total_seconds() / 3 if timeout else 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._schedule()

    def _schedule(self) -> None:
        if self._interval > 0:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._beat)

    def _beat(self) -> None:
        activity.heartbeat(*self._context.heartbeat_details)
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _DeferredStart:
    """A stage attempt's `running` rows, written by a timer after `START_DELAY` unless the attempt's
    outcome takes them first."""

    def __init__(self, writer: GroupCommit, start: StageStart) -> None:
        self._writer = writer
        self._start = start
        self._written: asyncio.Task[bool] | None = None
        self._timer = asyncio.get_running_loop().call_later(START_DELAY, self._write)

    def _write(self) -> None:
        rows = projection.stage_started(self._start)
        self._written = asyncio.ensure_future(_best_effort("start", self._writer.write(rows)))

    def stop_timer(self) -> None:
        """Do not write the start on its own any more (a cancelled attempt leaves it unwritten)."""
        self._timer.cancel()

    async def settle(self, finished_at: datetime | None = None) -> list[Row]:
        """The start's rows to write with the outcome (the stage `complete` at `finished_at` if
        given), or none once the timer has written them; stops the timer."""
        self.stop_timer()
        if self._written is not None:
            await self._written  # ordered before whatever the caller writes next
            return []
        return projection.stage_started(dataclasses.replace(self._start, finished_at=finished_at))

    async def settled_write(self) -> None:
        """Write the start now if the timer has not (a failure's record needs the stage's row)."""
        if rows := await self.settle():
            await self._writer.write(rows)


def _fields(stage_input: StageInput, run_id: str, attempt: int) -> dict[str, object]:
    return job_fields(
        job_id=stage_input.job_id,
        run_id=run_id,
        job_type=stage_input.job_type,
        stage=stage_input.stage.name,
        attempt=attempt,
        tenant=stage_input.tenant_id,
    )


def _allowed(info: activity.Info, declared: int) -> int:
    """The attempts the stage is allowed in all: its declaration's, unless its retry policy was
    changed in flight (a breaker gives back the attempts it held)."""
    policy = info.retry_policy
    return policy.maximum_attempts if policy is not None and policy.maximum_attempts > 0 else declared


def _run_id(info: activity.Info) -> str:
    if info.workflow_run_id is None:  # only a standalone activity has none; stages never are
        raise ApplicationError("stage activities run inside a JobWorkflow", non_retryable=True)
    return info.workflow_run_id
