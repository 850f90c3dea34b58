"""The job types every redrive ships, as samples of what a team declares in its own package:
`webhook`, the failure-on-demand `demo`, and `demo_review`. Their handlers live in
`activities/handlers/` and are named by import path, so the core imports no activity code."""

from __future__ import annotations

from datetime import timedelta

from redrive.jobtypes.payloads import DemoPayload, WebhookPayload
from redrive.jobtypes.registry import JobType, Stage

WEBHOOK = JobType(
    name="webhook",
    description="Deliver an HTTP request; 408, 429, 5xx and network errors are retried.",
    stages=(
        Stage(
            name="deliver",
            handler="redrive.activities.handlers.webhook:deliver",
            start_to_close_timeout=timedelta(seconds=60),
        ),
    ),
    payload_model=WebhookPayload,
)

DEMO = JobType(
    name="demo",
    description="Three stages that sleep payload.sleep_ms and fail on demand (payload.fail).",
    stages=tuple(
        Stage(
            name=name,
            handler="redrive.activities.handlers.demo:run_stage",
            start_to_close_timeout=timedelta(minutes=1),
        )
        for name in ("prepare", "process", "finish")
    ),
    payload_model=DemoPayload,
)


DEMO_REVIEW = JobType(
    name="demo_review",
    description="The demo's prepare; a person approves or rejects (POST /v1/jobs/{id}/review); finish.",
    stages=(
        DEMO.stages[0],
        Stage(name="approval", activity="review", kind="review", review_timeout=timedelta(days=3)),
        DEMO.stages[2],
    ),
)

BUILTIN = (WEBHOOK, DEMO, DEMO_REVIEW)
