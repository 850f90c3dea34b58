"""The baseline's activities and search-attribute keys, as hand-written Temporal code would have them.

Its workflows are in `bench.bare_workflows`, each alone in its module: the sandbox imports a
workflow's module again for every run, and redrive's hot module (`workflows/job.py`) holds only
`JobWorkflow`, so the baseline gets the same.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
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
