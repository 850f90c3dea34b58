"""The job types every redrive ships: `webhook` and the failure-on-demand `demo`."""

from __future__ import annotations

from datetime import timedelta

from redrive.jobtypes.registry import JobType, JobTypeRegistry, StageSpec

WEBHOOK = JobType(
    name="webhook",
    description="Deliver an HTTP request; 408, 429, 5xx and network errors are retried.",
    stages=(
        StageSpec(name="deliver", activity="webhook.deliver", start_to_close_timeout=timedelta(seconds=60)),
    ),
)

DEMO = JobType(
    name="demo",
    description="Three stages that sleep payload.sleep_ms and fail on demand (payload.fail).",
    stages=tuple(
        StageSpec(name=name, activity=f"demo.{name}", start_to_close_timeout=timedelta(minutes=1))
        for name in ("prepare", "process", "finish")
    ),
)


def builtin_registry() -> JobTypeRegistry:
    """The built-in job types with their seed retry declarations."""
    return JobTypeRegistry([WEBHOOK, DEMO])
