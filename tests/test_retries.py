"""Retry math and the error taxonomy (pure logic)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from redrive import errors
from redrive.errors import PERMANENT_ERROR_TYPES, is_permanent, retry_after_hint
from redrive.retry_policy import Retry, next_delay, nominal_delay, to_retry_policy

SEED = Retry()


def test_seed_schedule_is_30_120_480_seconds() -> None:
    """The seed declaration waits 30 s, 120 s, 480 s before attempts 2, 3 and 4."""
    assert [nominal_delay(SEED, n).total_seconds() for n in (1, 2, 3)] == [30, 120, 480]


def test_jitter_stays_within_a_quarter() -> None:
    """Jitter adds between 0 and 25 % of the nominal delay."""
    assert next_delay(SEED, 2, 0.0) == timedelta(seconds=120)
    assert next_delay(SEED, 2, 0.999999) < timedelta(seconds=150)
    assert next_delay(SEED, 2, 0.5) == timedelta(seconds=135)


def test_maximum_interval_caps_the_backoff() -> None:
    """A long schedule never waits more than maximum_interval (plus jitter)."""
    declaration = Retry(max_retries=10, maximum_interval=timedelta(minutes=10), jitter=0)
    assert nominal_delay(declaration, 9) == timedelta(minutes=10)


def test_retry_after_hint_replaces_the_backoff() -> None:
    """A server's Retry-After hint sets the base delay, capped at maximum_interval."""
    assert next_delay(SEED, 1, 0.0, timedelta(seconds=7)) == timedelta(seconds=7)
    assert next_delay(SEED, 1, 0.0, timedelta(days=2)) == SEED.maximum_interval


def test_policy_counts_attempts_as_retries_plus_one() -> None:
    """Temporal's maximum_attempts is the first attempt plus max_retries."""
    policy = to_retry_policy(Retry(max_retries=3))
    assert policy.maximum_attempts == 4
    assert policy.initial_interval == timedelta(seconds=30)
    assert policy.backoff_coefficient == 4
    assert set(policy.non_retryable_error_types or []) == set(PERMANENT_ERROR_TYPES)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_interval", timedelta(0)),
        ("backoff_coefficient", 0.5),
        ("max_retries", -1),
        ("jitter", 1.5),
        ("maximum_interval", timedelta(seconds=1)),
    ],
)
def test_bad_declarations_are_refused(field: str, value: object) -> None:
    """A declaration that cannot describe a schedule raises at construction."""
    with pytest.raises(ValueError, match=field):
        Retry(**{field: value})  # type: ignore[arg-type]  # deliberately loose


def test_permanent_names_come_from_the_tree() -> None:
    """Every PermanentError subclass in the taxonomy is non-retryable, and no retryable one is."""
    assert set(PERMANENT_ERROR_TYPES) == {
        "UnsupportedFormat",
        "CorruptedFile",
        "InvalidFileType",
        "AuthenticationFailed",
        "PermissionDenied",
        "FileTooLarge",
        "ValidationError",
    }


def test_classification_is_by_class_not_by_name() -> None:
    """A subclass of a permanent error is permanent; a message that mentions one is not."""

    class SchemaMismatch(errors.ValidationError):
        pass

    assert is_permanent(SchemaMismatch("x"))
    assert not is_permanent(RuntimeError("ValidationError in the message"))
    assert not is_permanent(errors.ServiceUnavailable("down"))
    assert not is_permanent(ConnectionError("reset"))


def test_rate_limit_carries_its_hint() -> None:
    """RateLimitExceeded exposes its retry-after hint; other errors have none."""
    assert retry_after_hint(errors.RateLimitExceeded("slow", retry_after=timedelta(seconds=3))) == timedelta(
        seconds=3
    )
    assert retry_after_hint(TimeoutError()) is None
