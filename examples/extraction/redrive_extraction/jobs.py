"""`extraction`: one stage, with the classification teams of document pipelines start from.

Retried (30 s, ×4, 3 retries, 0–25 % jitter): ConnectionError, TimeoutError, ServiceUnavailable,
RateLimitExceeded (its Retry-After is honoured), TemporaryFailure, S3ConnectionError, and any error
the list does not name. Dead-lettered at once: UnsupportedFormat, CorruptedFile, InvalidFileType,
AuthenticationFailed, PermissionDenied.

    {"url": "file:///data/report.pdf"}                       extract its text
    {"url": "...", "simulate": "RateLimitExceeded"}          raise that error instead, to watch it
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redrive_protocols.documents import pdf_text, read_bytes

from redrive import JobType, Retry, Stage, StageContext
from redrive.errors import (
    AuthenticationFailed,
    CorruptedFile,
    InvalidFileType,
    PermissionDenied,
    RateLimitExceeded,
    S3ConnectionError,
    ServiceUnavailable,
    TemporaryFailure,
    UnsupportedFormat,
)

RETRYABLE: dict[str, type[Exception]] = {
    error.__name__: error
    for error in (
        ConnectionError,
        TimeoutError,
        ServiceUnavailable,
        RateLimitExceeded,
        TemporaryFailure,
        S3ConnectionError,
    )
}
PERMANENT: dict[str, type[Exception]] = {
    error.__name__: error
    for error in (UnsupportedFormat, CorruptedFile, InvalidFileType, AuthenticationFailed, PermissionDenied)
}


class ExtractionRequest(BaseModel):
    """The document, and optionally an error to raise instead of reading it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    simulate: str | None = Field(default=None, description=f"one of {', '.join([*RETRYABLE, *PERMANENT])}")


async def extract(context: StageContext) -> dict[str, Any]:
    """The document's text, or the error it was asked to simulate."""
    request = ExtractionRequest.model_validate(context.payload)
    if request.simulate is not None:
        raise _simulated(request.simulate, context.attempt)
    data = await asyncio.to_thread(read_bytes, request.url)
    return {"text": await asyncio.to_thread(pdf_text, data, request.url)}


def _simulated(name: str, attempt: int) -> Exception:
    message = f"simulated {name} on attempt {attempt}"
    if name == "RateLimitExceeded":
        return RateLimitExceeded(message, retry_after=timedelta(seconds=45))
    error_class = RETRYABLE.get(name) or PERMANENT.get(name) or RuntimeError  # unknown: retried
    return error_class(message)


EXTRACTION = JobType(
    name="extraction",
    description="Extract a document's text; transient failures retry, permanent ones dead-letter at once.",
    stages=[
        Stage(
            name="extract",
            handler=extract,
            retry=Retry(
                initial_interval=timedelta(seconds=30),
                backoff_coefficient=4,
                max_retries=3,
                jitter=0.25,
                non_retryable=tuple(PERMANENT),
            ),
        )
    ],
    payload_model=ExtractionRequest,
)

JOB_TYPES = [EXTRACTION]
