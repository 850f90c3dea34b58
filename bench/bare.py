"""The baseline: a plain Temporal workflow running three no-op activities, as hand-written code would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

STAGES = ("prepare", "process", "finish")
# Spelt out rather than imported from redrive: the baseline is code written without redrive.
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
JOB_STAGE = SearchAttributeKey.for_keyword("JobStage")


@activity.defn(name="bare.stage")
async def bare_stage(stage: str) -> str:
    """Do nothing, like a demo stage with sleep_ms = 0."""
    return stage


@activity.defn(name="bare.shaped_stage")
async def shaped_stage(stage_input: dict[str, Any]) -> dict[str, Any]:
    """Do nothing with a redrive-shaped stage argument; answer like a redrive stage."""
    return {"output": None, "projected_complete": stage_input["last"]}


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


@workflow.defn(name="BareShapedWorkflow")
class BareShapedWorkflow:
    """Redrive's Temporal traffic without redrive's code: the job input with its plan, the same
    per-stage arguments, and both status upserts with `JobStage` (the client starts it with the
    three start attributes). What is left between this and redrive is redrive's own CPU."""

    @workflow.run
    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        workflow.upsert_search_attributes([JOB_STATUS.value_set("running"), JOB_STAGE.value_unset()])
        stages: list[dict[str, Any]] = job["stages"]
        outputs: dict[str, Any] = {}
        for position, stage in enumerate(stages):
            stage_input = {
                **{key: job[key] for key in ("job_id", "tenant_id", "job_type", "payload")},
                "stage": stage,
                "position": position,
                "outputs": dict(outputs),
                "last": position == len(stages) - 1,
            }
            result = await workflow.execute_activity(
                shaped_stage,
                stage_input,
                start_to_close_timeout=timedelta(minutes=1),
                activity_id=stage["name"],
            )
            outputs[stage["name"]] = result["output"]
        workflow.upsert_search_attributes(
            [JOB_STATUS.value_set("complete"), JOB_STAGE.value_set(stages[-1]["name"])]
        )
        return {"job_id": job["job_id"], "outputs": outputs}
