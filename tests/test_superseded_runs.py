"""When a superseded dead run's delete is asked for: after the server can honour it, and once."""

from datetime import UTC, datetime, timedelta

from redrive.activities.superseded_runs import RESEND_EVERY, sends_delete
from redrive.contracts import SupersededRun
from redrive.operations.retry import SETTLE, settle_delay

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_a_run_that_just_closed_waits_until_it_has_settled() -> None:
    assert settle_delay(NOW - timedelta(seconds=5), NOW) == SETTLE - timedelta(seconds=5)
    assert settle_delay(NOW - SETTLE, NOW) == timedelta(0)
    assert settle_delay(NOW - timedelta(days=3), NOW) == timedelta(0)
    assert settle_delay(None, NOW) == timedelta(0)  # not closed as far as Temporal says: no wait


def test_the_delete_is_sent_on_the_first_check_and_then_rarely() -> None:
    run = SupersededRun(job_id="job-1", run_id="run-1")
    sent = [attempt for attempt in range(1, 3 * RESEND_EVERY + 1) if sends_delete(run, attempt)]
    assert sent == [1, RESEND_EVERY + 1, 2 * RESEND_EVERY + 1]


def test_a_delete_the_caller_sent_is_not_sent_again_at_once() -> None:
    run = SupersededRun(job_id="job-1", run_id="run-1", delete_sent=True)
    sent = [attempt for attempt in range(1, 2 * RESEND_EVERY + 1) if sends_delete(run, attempt)]
    assert sent == [RESEND_EVERY + 1]
