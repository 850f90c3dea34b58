"""`BareWorkflow`: three no-op activities in order, default retry policy, no bookkeeping."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.bare import STAGES, bare_stage


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
