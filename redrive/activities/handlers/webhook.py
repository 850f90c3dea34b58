"""The `webhook` job type: one HTTP request, classified into the error taxonomy.

2xx succeeds. Network errors, timeouts, 408, 429 and 5xx are retryable (a `Retry-After` on 429 or
503 sets the next delay); 401 and 403 are `PermissionDenied`; any other 4xx is `ValidationError`.
The API checks the payload against `WebhookPayload` at submission, so the stage only reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from redrive.context import StageContext
from redrive.errors import (
    PermissionDenied,
    RateLimitExceeded,
    ServiceUnavailable,
    TemporaryFailure,
    ValidationError,
)
from redrive.jobtypes.payloads import WebhookPayload, read_payload

_BODY_PREVIEW = 200


async def deliver(context: StageContext) -> dict[str, Any]:
    """Send the request the payload describes; return the status code of a 2xx answer."""
    request = read_payload(WebhookPayload, context.payload)
    method, url, body = request.method, str(request.url), request.body
    content = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body
    target = url.split("?", 1)[0]  # a query string may hold a token: keep it out of error messages
    try:
        response = await context.http.request(
            method, url, headers=request.headers, content=content, json=json_body
        )
    except httpx.TimeoutException as error:
        raise TimeoutError(f"{method} {target} timed out: {type(error).__name__}") from error
    except httpx.TransportError as error:
        raise ConnectionError(f"{method} {target} failed: {type(error).__name__}: {error}") from error
    if response.is_success:
        return {"status_code": response.status_code}
    raise _classify(response, f"{method} {target} answered {response.status_code}: {_preview(response)}")


def _classify(response: httpx.Response, message: str) -> Exception:
    status = response.status_code
    hint = retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return RateLimitExceeded(message, retry_after=hint)
    if status == 503:
        return ServiceUnavailable(message, retry_after=hint)
    if status >= 500:
        return ServiceUnavailable(message)
    if status == 408:
        return TemporaryFailure(message)
    if status in (401, 403):
        return PermissionDenied(message)
    return ValidationError(message)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """A `Retry-After` header (seconds or an HTTP date) as a delay; None when absent or unreadable."""
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - (now or datetime.now(UTC)), timedelta(0))


def _preview(response: httpx.Response) -> str:
    text = response.text[:_BODY_PREVIEW]
    return text + ("…" if len(response.text) > _BODY_PREVIEW else "")
