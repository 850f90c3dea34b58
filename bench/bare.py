"""The baseline: a plain Temporal workflow running three no-op activities, as hand-written code would."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

STAGES = ("prepare", "process", "finish")
# Spelt out rather than imported from redrive: the baseline is code written without redrive.
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")


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


@workflow.defn(name="BareStatusWorkflow")
class BareStatusWorkflow:
    """The baseline plus one search-attribute upsert, queued -> running (the start sets `queued`
    and the close upserts `complete` in the same task): what any job system that keeps its status in
    Temporal's visibility pays at least, since each upsert is a visibility write in the server."""

    @workflow.run
    async def run(self, payload: dict[str, object]) -> list[str]:
        workflow.upsert_search_attributes([JOB_STATUS.value_set("running")])
        outputs = [
            await workflow.execute_activity(
                bare_stage, stage, start_to_close_timeout=timedelta(minutes=1), activity_id=stage
            )
            for stage in STAGES
        ]
        workflow.upsert_search_attributes([JOB_STATUS.value_set("complete")])
        return outputs
