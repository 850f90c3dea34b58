"""How a stage's final `ActivityError` maps onto a dead-letter reason (pure, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from redrive.jobtypes.registry import Stage
    from redrive.status import ErrorReason


@dataclass(frozen=True)
class DeadLetterCause:
    """Why a stage gave up, in dead-letter terms."""

    reason: ErrorReason
    error_type: str
    message: str
    attempts: int


def classify(error: ActivityError | ApplicationError | TimeoutError, stage: Stage) -> DeadLetterCause:
    """The dead-letter reason, error type, message and attempt count for `error` (a local stage's
    failure arrives as its cause, without the `ActivityError` around it)."""
    if not isinstance(error, ActivityError):
        return _classify(error, None, error.message, stage)
    return _classify(error.cause, error.retry_state, error.message, stage)


def _classify(
    cause: BaseException | None, retry_state: RetryState | None, message: str, stage: Stage
) -> DeadLetterCause:
    max_attempts = stage.retry.max_attempts
    if isinstance(cause, TimeoutError):
        timeout = _camel(TimeoutType(cause.type).name) if cause.type is not None else "Unknown"
        if cause.type == TimeoutType.SCHEDULE_TO_START:
            reason = ErrorReason.RUNNER_UNAVAILABLE
            return DeadLetterCause(reason, f"{timeout}Timeout", _runner_message(stage), 1)
        attempts = max_attempts if retry_state in (RetryState.MAXIMUM_ATTEMPTS_REACHED, None) else 1
        return DeadLetterCause(ErrorReason.MAX_RETRIES, f"{timeout}Timeout", cause.message, attempts)
    if isinstance(cause, ApplicationError):
        attempts = _attempt(cause, max_attempts)
        error_type = cause.type or "ApplicationError"
        if error_type == ErrorReason.HANDLER_MISSING.value:
            return DeadLetterCause(ErrorReason.HANDLER_MISSING, error_type, cause.message, attempts)
        if retry_state == RetryState.NON_RETRYABLE_FAILURE or cause.non_retryable:
            return DeadLetterCause(ErrorReason.VALIDATION, error_type, cause.message, attempts)
        return DeadLetterCause(ErrorReason.MAX_RETRIES, error_type, cause.message, attempts)
    said = str(cause) if cause is not None else message
    return DeadLetterCause(ErrorReason.MAX_RETRIES, type(cause).__name__, said, max_attempts)


def held_by_breaker(error: ActivityError) -> bool:
    """The stage's last attempt failed while its breaker was open (the stage activity says so)."""
    cause = error.cause
    if not isinstance(cause, ApplicationError) or cause.non_retryable:
        return False
    details = cause.details
    return bool(details and isinstance(details[0], dict) and details[0].get("held") is True)


def _attempt(cause: ApplicationError, default: int) -> int:
    # The stage activity puts {"attempt": n, ...} in the error's details.
    details = cause.details
    if details and isinstance(details[0], dict) and isinstance(details[0].get("attempt"), int):
        return int(details[0]["attempt"])
    return default


def _runner_message(stage: Stage) -> str:
    return (
        f"no worker started stage {stage.name!r} within {stage.schedule_to_start_timeout}; "
        "check that workers are running on the task queue"
    )


def _camel(name: str) -> str:
    # SCHEDULE_TO_START → ScheduleToStart, to read like the other error type names.
    return "".join(part.capitalize() for part in name.split("_"))
