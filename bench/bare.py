"""The baseline: a plain Temporal workflow running three no-op activities, as hand-written code would."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STAGES = ("prepare", "process", "finish")


@activity.defn(name="bare.stage")
async def bare_stage(stage: str) -> str:
    """Do nothing, like a demo stage with sleep_ms = 0."""
    return stage


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    """Three activities in order, default retry policy, no bookkeeping."""

    @workflow.run
    async def run(self, payload: dict[str, object]) -> list[str]:
        return [
            await workflow.execute_activity(
                bare_stage, stage, start_to_close_timeout=timedelta(minutes=1), activity_id=stage
            )
            for stage in STAGES
        ]
