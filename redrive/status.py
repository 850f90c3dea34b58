"""Job statuses, dead-letter reasons and the Temporal search attributes that mirror them."""

from __future__ import annotations

from enum import StrEnum

from temporalio.common import SearchAttributeKey


class JobStatus(StrEnum):
    """`queued → running ⇄ retrying → (pending_review →) complete`; `dead_letter → archived`; `cancelled`."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    PENDING_REVIEW = "pending_review"
    COMPLETE = "complete"
    DEAD_LETTER = "dead_letter"
    ARCHIVED = "archived"
    CANCELLED = "cancelled"


class ErrorReason(StrEnum):
    """Why a job is in the dead-letter queue."""

    MAX_RETRIES = "MaxRetries"
    VALIDATION = "Validation"
    HANDLER_MISSING = "HandlerMissing"
    RUNNER_UNAVAILABLE = "RunnerUnavailable"
    TIMEOUT = "Timeout"
    TERMINATED = "Terminated"
    REJECTED = "Rejected"


JOB_TYPE = SearchAttributeKey.for_keyword("JobType")
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
JOB_STAGE = SearchAttributeKey.for_keyword("JobStage")
TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
ERROR_REASON = SearchAttributeKey.for_keyword("ErrorReason")

SEARCH_ATTRIBUTES = (JOB_TYPE, JOB_STATUS, JOB_STAGE, TENANT_ID, ERROR_REASON)
"""Every search attribute redrive sets; the server must have each registered as Keyword."""
