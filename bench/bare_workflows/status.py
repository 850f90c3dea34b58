"""`BareStatusWorkflow`: the baseline plus the search-attribute upserts of a job's status."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.bare import JOB_STATUS, STAGES, bare_stage


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
