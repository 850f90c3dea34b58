"""The error taxonomy: which failures a stage retries and which go straight to the dead-letter queue.

    Exception
    ├── ConnectionError                  (builtin, retryable)
    ├── TimeoutError                     (builtin, retryable)
    └── JobError
        ├── RetryableError
        │   ├── ServiceUnavailable
        │   ├── RateLimitExceeded        (carries a retry-after hint)
        │   ├── TemporaryFailure
        │   └── S3ConnectionError
        └── PermanentError
            ├── UnsupportedFormat
            ├── CorruptedFile
            ├── InvalidFileType
            ├── AuthenticationFailed
            ├── PermissionDenied
            ├── FileTooLarge
            └── ValidationError

Any error not under `PermanentError` is retryable. Temporal matches non-retryable types by exact
name, so a subclass is not covered by its parent's name: `PERMANENT_ERROR_TYPES` is derived from
the tree rather than typed out.
"""

from __future__ import annotations

from datetime import timedelta


class JobError(Exception):
    """Base of the errors a stage handler raises on purpose."""


class RetryableError(JobError):
    """A transient failure: the stage is attempted again after a backoff, or after `retry_after`
    when given (a server's `Retry-After`), capped at the stage's `maximum_interval`."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(JobError):
    """A failure no retry can fix: the job goes to the dead-letter queue at once."""


class ServiceUnavailable(RetryableError):
    """A downstream service answered that it is unavailable (HTTP 5xx)."""


class RateLimitExceeded(RetryableError):
    """A downstream service asked us to slow down; `retry_after` is its hint, if it gave one."""


class TemporaryFailure(RetryableError):
    """Any other failure expected to pass."""


class S3ConnectionError(RetryableError):
    """Object storage could not be reached."""


class UnsupportedFormat(PermanentError):
    """The input is in a format the stage does not handle."""


class CorruptedFile(PermanentError):
    """The input cannot be read."""


class InvalidFileType(PermanentError):
    """The input is not the kind of file the stage expects."""


class AuthenticationFailed(PermanentError):
    """Credentials were rejected."""


class PermissionDenied(PermanentError):
    """Credentials were accepted but do not allow the action."""


class FileTooLarge(PermanentError):
    """The input exceeds a size limit."""


class ValidationError(PermanentError):
    """The job's payload or a downstream answer is invalid."""


def _subclasses(root: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for sub in root.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


PERMANENT_ERROR_TYPES: tuple[str, ...] = tuple(cls.__name__ for cls in _subclasses(PermanentError))
"""Names Temporal must not retry, derived from the tree."""

_NAMED: list[type[Exception]] = [ConnectionError, TimeoutError, *_subclasses(JobError)]
ERROR_CLASSES: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in _NAMED if cls not in (RetryableError, PermanentError)
}
"""Every named error in the taxonomy, by name (for the demo job type and configuration checks)."""


def error_type_name(error: BaseException) -> str:
    """The name Temporal sees for `error`: its class name."""
    return type(error).__name__


def is_permanent(error: BaseException) -> bool:
    """Whether `error` goes straight to the dead-letter queue (by class, never by message)."""
    return isinstance(error, PermanentError)


def retry_after_hint(error: BaseException) -> timedelta | None:
    """The server-given delay before the next attempt, when the error carries one."""
    hint = getattr(error, "retry_after", None)
    return hint if isinstance(hint, timedelta) else None
