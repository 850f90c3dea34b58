"""`BareShapedWorkflow`: redrive's Temporal traffic without redrive's code."""

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.bare import JOB_STAGE, JOB_STATUS, shaped_stage


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
