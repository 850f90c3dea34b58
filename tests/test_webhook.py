"""The webhook handler's classification of HTTP answers (pure logic over httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from redrive import errors
from redrive.activities.handlers.webhook import deliver, retry_after
from redrive.context import StageContext


def _context(handler: Callable[[httpx.Request], httpx.Response], **payload: Any) -> StageContext:
    return StageContext(
        job_id="job-1",
        job_type="webhook",
        stage="deliver",
        attempt=1,
        payload={"url": "https://hooks.example/in?token=s3cret", **payload},
        outputs={},
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


async def test_2xx_succeeds_and_sends_the_request() -> None:
    """A 2xx answer succeeds; method, headers and JSON body are sent as given."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result = await deliver(_context(answer, method="put", headers={"X-Id": "7"}, body={"a": 1}))
    assert result == {"status_code": 204}
    assert seen[0].method == "PUT"
    assert seen[0].headers["X-Id"] == "7"
    assert seen[0].content == b'{"a":1}'


@pytest.mark.parametrize(
    ("status", "error", "hint"),
    [
        (500, errors.ServiceUnavailable, None),
        (503, errors.ServiceUnavailable, timedelta(seconds=12)),
        (429, errors.RateLimitExceeded, timedelta(seconds=12)),
        (408, errors.TemporaryFailure, None),
        (401, errors.PermissionDenied, None),
        (403, errors.PermissionDenied, None),
        (404, errors.ValidationError, None),
        (422, errors.ValidationError, None),
    ],
)
async def test_status_codes_map_onto_the_taxonomy(
    status: int, error: type[Exception], hint: timedelta | None
) -> None:
    """Each failing status raises its taxonomy error; 429 and 503 keep the Retry-After hint."""
    context = _context(lambda _: httpx.Response(status, text="x" * 500, headers={"Retry-After": "12"}))
    with pytest.raises(error) as raised:
        await deliver(context)
    assert str(status) in str(raised.value)
    assert "xxxx" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert errors.retry_after_hint(raised.value) == hint


async def test_network_errors_are_retryable() -> None:
    """A refused connection is ConnectionError, a timeout TimeoutError: both retryable."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ConnectionError):
        await deliver(_context(refuse))
    with pytest.raises(TimeoutError):
        await deliver(_context(stall))


@pytest.mark.parametrize(
    "payload",
    [{"url": "ftp://x"}, {"method": "BREW"}, {"headers": {"a": 1}}, {"url": None}],
)
async def test_bad_payloads_are_permanent(payload: dict[str, Any]) -> None:
    """A payload the handler cannot send is a ValidationError (no retry can fix it)."""
    with pytest.raises(errors.ValidationError, match="payload"):
        await deliver(_context(lambda _: httpx.Response(200), **payload))


def test_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After is seconds or an HTTP date; anything else is ignored."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("30") == timedelta(seconds=30)
    assert retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == timedelta(minutes=1)
    assert retry_after("soon") is None
    assert retry_after(None) is None
